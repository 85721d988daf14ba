# bash completion for utmkit's tools: vm-create vm-config vm-argv vm-run vm-stop
# vm-ls vm-qmp vm-disk vm-pack vm-screen vm-migrate vm-guest (and any later vm-* tool given to `complete`).
#
# Load it from ~/.bashrc:   . /usr/local/share/utmkit/completion/utmkit.bash
# or link it into a bash-completion folder under each tool's name, e.g.
#   ln -s .../utmkit.bash ~/.local/share/bash-completion/completions/vm-run
# (the Debian package links it into /usr/share/bash-completion/completions/).
#
# Nothing here is a copy of the tools' interfaces: options come from each tool's
# --help, configuration keys and their values from `vm-config keys`, drive ids from
# `vm-config BUNDLE show`, QMP commands, their arguments and events from the running
# VM (`vm-qmp BUNDLE query-commands`, `query-qmp-schema`), snapshot names from
# `vm-disk BUNDLE snapshot list --json`. Bundle names come from the folders of
# $VM_PATH, as the tools look them up. No dependency beyond bash 4.2, sed and awk.

# Per-shell caches of what never changes while a tool stays the same binary.
declare -gA _utmkit_opt_cache _utmkit_verb_cache
_utmkit_keys_cache=

# The word being completed, as the tools will see it: bash splits words at
# COMP_WORDBREAKS (= and :), so `--accel=kvm` arrives as three words; glue them.
# Sets _u_words, _u_cword, _u_w (the whole current word up to the cursor) and
# _u_rl (the part of it readline replaces).
_utmkit_words() {
	local i w eq=0 j=-1
	_u_words=()
	_u_cword=0
	for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
		w=${COMP_WORDS[i]}
		if ((j >= 0)) && [[ -n $w && -z ${w//[=:]/} ]] && ((i > 0)); then
			# a run of = or : glues to the word before it (no blank between, we assume)
			_u_words[j]+=$w
			eq=1
		elif ((eq)) && [[ -n $w ]]; then
			_u_words[j]+=$w
			eq=0
		else
			_u_words[++j]=$w
			eq=0
		fi
		((i == COMP_CWORD)) && _u_cword=$j
	done
	((_u_cword > j)) && _u_words[_u_cword]=
	_u_w=${_u_words[_u_cword]}
	_u_rl=${COMP_WORDS[COMP_CWORD]}
	[[ -n $_u_rl && -z ${_u_rl//[=:]/} ]] && _u_rl=
	# only the text before the cursor counts
	local line=${COMP_LINE:0:COMP_POINT}
	if [[ -n $COMP_LINE && $line != *"$_u_rl" ]]; then
		local tail=${COMP_LINE:COMP_POINT}
		tail=${tail%%[[:space:]]*}
		if [[ -n $tail && $_u_rl == *"$tail" ]]; then
			_u_rl=${_u_rl%"$tail"}
			_u_w=${_u_w%"$tail"}
		fi
	fi
	_u_cur=$_u_w
}

# _utmkit_add CANDIDATE...: offer those that start with $_u_cur (the value
# being completed, a suffix of $_u_w), trimmed to what readline replaces.
_utmkit_add() {
	local c full head=${_u_w:0:${#_u_w}-${#_u_cur}} cut=$((${#_u_w} - ${#_u_rl}))
	((cut < 0)) && cut=0
	for c; do
		[[ $c == "$_u_cur"* ]] || continue
		full=$head$c
		COMPREPLY+=("${full:cut}")
	done
}

# Like _utmkit_add, but the words do not end there: no space after them.
_utmkit_add_nospace() {
	local n=${#COMPREPLY[@]}
	_utmkit_add "$@"
	((${#COMPREPLY[@]} > n)) && compopt -o nospace 2>/dev/null
	return 0
}

_utmkit_files() { # [-d]: files (or folders) matching the current value
	local f IFS=$'\n' list
	compopt -o filenames 2>/dev/null
	if [[ $1 == -d ]]; then
		list=$(compgen -d -- "$_u_cur")
	else
		list=$(compgen -f -- "$_u_cur")
	fi
	for f in $list; do _utmkit_add "$f"; done
}

# A word as the shell will pass it: quotes and backslashes removed, ~ expanded.
# (Never eval: completion must not run what is on the command line.)
_utmkit_dequote() {
	local w=$1
	case $w in
	\'*\') w=${w:1:${#w}-2} ;;
	\"*\") w=${w:1:${#w}-2} ;;
	*) w=${w//\\/} ;;
	esac
	# shellcheck disable=SC2088 # a literal ~/ typed on the command line
	[[ $w == "~/"* ]] && w=$HOME/${w#"~/"}
	_u_out=$w
}

# Bundle names in the folders of $VM_PATH (NAME.utm answers to NAME).
_utmkit_bundle_names() {
	local d b IFS=:
	for d in ${VM_PATH-}; do
		[[ -n $d ]] || continue
		for b in "$d"/*.utm; do
			[[ -d $b ]] || continue
			b=${b##*/}
			printf '%s\n' "${b%.utm}"
		done
	done
}

_utmkit_bundles() { # names from $VM_PATH, plus folders (a bundle is a folder)
	local b IFS=$'\n'
	for b in $(_utmkit_bundle_names); do _utmkit_add "$b"; done
	_utmkit_files -d
}

# The helpers below that read a tool's output cache it in this shell and leave
# their answer in _u_out (newline-separated): never call them in $(...), where
# the cache would die with the subshell.

# Options of TOOL from its --help, one "OPT ARG LONG" line each: ARG is the
# argument's name ("." for a flag), LONG the long form of the same option.
# Option lines look like "  -a, --accel ACCEL   text" or "      --long N  text".
_utmkit_opts() {
	local tool=$1
	if [[ -z ${_utmkit_opt_cache[$tool]+set} ]]; then
		_utmkit_opt_cache[$tool]=$("$tool" --help 2>&1 </dev/null | awk '
			/^[ \t]+-/ {
				s = $0; sub(/^[ \t]+/, "", s); k = 0; arg = "."
				# "-a, --accel ACCEL  text": options joined by ", ", then one
				# space and the argument (in capitals), or two spaces and the text
				while (match(s, /^-[^ ,]+/)) {
					o[++k] = substr(s, 1, RLENGTH); s = substr(s, RLENGTH + 1)
					sub(/[=[].*/, "", o[k])
					if (substr(s, 1, 2) != ", ") break
					s = substr(s, 3)
				}
				if (match(s, /^ \[?[A-Z][^ ]*/)) arg = substr(s, 2, RLENGTH - 1)
				# "-h, --help, -V, --version": pair each short option with the next long one
				for (j = 1; j <= k; j++) {
					l = o[j]
					if (l !~ /^--/) for (m = j + 1; m <= k; m++) if (o[m] ~ /^--/) { l = o[m]; break }
					print o[j], arg, l
				}
			}')
	fi
	_u_out=${_utmkit_opt_cache[$tool]}
}

# _utmkit_optinfo TOOL OPT: sets _u_arg (argument name, "." for a flag, "" for
# an unknown option) and _u_long (the long name).
_utmkit_optinfo() {
	local o a l
	_u_arg='' _u_long=$2
	_utmkit_opts "$1"
	while IFS=$' \t' read -r o a l; do
		if [[ $o == "$2" ]]; then
			_u_arg=$a _u_long=$l
			return
		fi
	done <<<"$_u_out"
}

# Subcommands (verbs) of TOOL from its usage lines: "TOOL [opts] BUNDLE verb ...",
# and with -n, those without a bundle: "TOOL [opts] verb ..." (vm-config keys).
_utmkit_verbs() {
	local tool=$1 key=$1
	[[ $1 == -n ]] && tool=$2 key="-n $2"
	if [[ -z ${_utmkit_verb_cache[$key]+set} ]]; then
		if [[ $1 == -n ]]; then
			_utmkit_verb_cache[$key]=$("$tool" --help 2>&1 </dev/null |
				sed -n "s/^\(usage:\)\{0,1\}[[:space:]]*${tool}\([[:space:]]\{1,\}\[[^]]*\]\)*[[:space:]]\{1,\}\([a-z][a-z0-9-]*\).*/\3/p" |
				sort -u)
		else
			_utmkit_verb_cache[$key]=$("$tool" --help 2>&1 </dev/null |
				sed -n "s/^\(usage:\)\{0,1\}[[:space:]]*${tool}[[:space:]].*[[:space:]]BUNDLE[[:space:]]\{1,\}\([a-z][a-z0-9-]*\).*/\2/p" |
				sort -u)
		fi
	fi
	_u_out=${_utmkit_verb_cache[$key]}
}

# `vm-config keys`: "KEY TYPE DESCRIPTION", enums end with "(v1 v2 ...)".
_utmkit_keys() {
	[[ -n $_utmkit_keys_cache ]] ||
		_utmkit_keys_cache=$(vm-config keys 2>/dev/null </dev/null)
	_u_out=$_utmkit_keys_cache
}

# Values of an enum or boolean key (section ids replaced by ID).
_utmkit_key_values() {
	local key=$1
	[[ $key == *.*.* ]] && key=${key%%.*}.ID.${key##*.}
	_utmkit_keys
	_u_out=$(awk -v k="$key" '
		$1 == k && $2 == "boolean" { print "true"; print "false" }
		$1 == k && $2 == "enum" && match($0, /\([^()]*\)$/) {
			n = split(substr($0, RSTART + 1, RLENGTH - 2), v, " ")
			for (i = 1; i <= n; i++) print v[i]
		}' <<<"$_u_out")
}

# Sections of a bundle from `vm-config BUNDLE show`: "TYPE ID" per line.
_utmkit_sections() {
	local b
	_utmkit_dequote "$1"
	b=$_u_out
	vm-config -q "$b" show 2>/dev/null </dev/null |
		sed -n "s/^\([a-z_][a-z0-9_]*\)[[:space:]]\{1,\}[\"']\{0,1\}\([^\"' {]*\)[\"']\{0,1\}[[:space:]]*{[[:space:]]*\$/\1 \2/p"
}

_utmkit_drive_ids() {
	local t id
	while IFS=$' \t' read -r t id; do
		[[ $t == drive ]] && _utmkit_add "$id"
	done < <(_utmkit_sections "$1")
}

# Every key of the bundle: section keys with the bundle's real ids.
_utmkit_config_keys() {
	local bundle=$1 k rest t id
	local -a secs=() keys=()
	[[ -n $bundle ]] && mapfile -t secs < <(_utmkit_sections "$bundle")
	_utmkit_keys
	while IFS=$' \t' read -r k rest; do
		if [[ $k == *.ID.* ]]; then
			for t in "${secs[@]}"; do
				id=${t#* }
				[[ ${t%% *} == "${k%%.*}" ]] && keys+=("${k%%.*}.$id.${k#*.ID.}")
			done
		elif [[ -n $k ]]; then
			keys+=("$k")
		fi
	done <<<"$_u_out"
	_utmkit_add "${keys[@]}"
}

# The value of KEY for vm-config set / vm-create --set.
_utmkit_config_value() {
	local key=$1 v IFS=$'\n'
	_utmkit_key_values "$key"
		for v in $_u_out; do _utmkit_add "$v"; done
	case ${key##*.} in
	image | kernel | initrd | dtb | bios | efi_vars) _utmkit_files ;;
	path)
		if [[ $key == share.* ]]; then _utmkit_files -d; else _utmkit_files; fi ;;
	esac
}

# QMP, quietly and quickly: no completion waits on a hung VM.
_utmkit_qmp() { # TARGET... COMMAND: TARGET is a bundle or "-s PATH"
	vm-qmp -c -t 2 "$@" 2>/dev/null </dev/null
}

_utmkit_qmp_names() { # TARGET...: QMP command names
	_utmkit_qmp "$@" query-commands | tr -d ' \t\n' | grep -o '"name":"[^"]*"' | sed 's/"name":"\(.*\)"/\1/'
}

_utmkit_qmp_events() { # TARGET...: event names from the schema
	_utmkit_qmp "$@" query-qmp-schema | tr -d ' \t\n' |
		grep -o '"name":"[^"]*","meta-type":"event"' | sed 's/"name":"\([^"]*\)".*/\1/'
}

_utmkit_qmp_args() { # TARGET... COMMAND: argument names of COMMAND
	local cmd=${!#} schema n
	set -- "${@:1:$#-1}"
	schema=$(_utmkit_qmp "$@" query-qmp-schema | tr -d ' \t\n')
	[[ -n $schema ]] || return 0
	n=$(printf '%s' "$schema" | grep -o "{\"name\":\"$cmd\",[^{}]*}" | head -n 1 |
		sed -n 's/.*"arg-type":"\([^"]*\)".*/\1/p')
	[[ -n $n ]] || return 0
	printf '%s' "$schema" | grep -o "{\"name\":\"$n\",\"members\":\[.*" | head -n 1 |
		sed 's/\],"meta-type".*//' | grep -o '{"name":"[^"]*"' | tail -n +2 |
		sed 's/{"name":"\(.*\)"/\1=/'
}

_utmkit_snapshots() { # BUNDLE: snapshot names
	local b
	_utmkit_dequote "$1"
	b=$_u_out
	vm-disk -q "$b" snapshot list --json 2>/dev/null </dev/null | tr -d '\n' |
		grep -o '"name"[[:space:]]*:[[:space:]]*"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'
}

# Values for an option's argument: by the option's long name, then by the
# argument's name in --help.
_utmkit_optvalue() { # TOOL OPT
	local v IFS=$'\n' _u_arg _u_long
	_utmkit_optinfo "$1" "$2"
	case $_u_long in
	--accel | --arch | --firmware | --display)
		_utmkit_key_values "${_u_long#--}"
		for v in $_u_out; do _utmkit_add "$v"; done
		return ;;
	--interface)
		_utmkit_key_values drive.ID.interface
		for v in $_u_out; do _utmkit_add "$v"; done
		return ;;
	--format)
		if [[ $1 == vm-pack ]]; then
			_utmkit_add zip tar tar.gz tar.zst tar.xz tar.bz2
		else
			_utmkit_add qcow2 raw
		fi
		return ;;
	--net)
		_utmkit_add user none
		_utmkit_add_nospace tap: bridge: socket: listen: mcast:
		return ;;
	--set)
		if [[ $_u_cur == *=* ]]; then
			local key=${_u_cur%%=*}
			_u_cur=${_u_cur#*=}
			_utmkit_config_value "$key"
		else
			local k rest
			_utmkit_keys
			while IFS=$' \t' read -r k rest; do
				[[ -n $k && $k != *.ID.* ]] && _utmkit_add_nospace "$k="
			done <<<"$_u_out"
		fi
		return ;;
	--wait-event)
		((${#_u_target[@]})) || return 0
		for v in $(_utmkit_qmp_events "${_u_target[@]}"); do _utmkit_add "$v"; done
		return ;;
	esac
	case $_u_arg in
	*FILE* | *PATH* | ARCHIVE | USER_DATA | F) _utmkit_files ;;
	DIR) _utmkit_files -d ;;
	SRC) _utmkit_bundles ;;
	N | S | SECONDS | SIZE | NAME | JSON | LINE | CMDLINE | RULE | TYPE | ID | L | LABEL | DEVICE | KEY*) ;;
	*) _utmkit_files ;;
	esac
}

# The completion function for every tool.
_utmkit() {
	local tool=${1##*/} w i skip=0 optval=0 dashdash=0 hassock=0 _u_arg _u_long
	local -a pos=() _u_target=()
	local -a _u_words
	local _u_cword _u_w _u_rl _u_cur _u_out
	COMPREPLY=()
	_utmkit_words

	# Scan the words: positional arguments before the cursor, options and their
	# values; for vm-qmp, the VM to ask (BUNDLE or --socket), wherever it is.
	local -a after=()
	for ((i = 1; i < ${#_u_words[@]}; i++)); do
		if ((i == _u_cword)); then
			# the cursor is on an option's value
			((skip)) && optval=1
			skip=0
			continue
		fi
		w=${_u_words[i]}
		if ((skip)); then
			skip=0
			[[ $tool == vm-qmp && $_u_long == --socket ]] && _utmkit_dequote "$w" && _u_target=(-s "$_u_out")
			continue
		fi
		if ((!dashdash)) && [[ $w == -?* ]]; then
			[[ $w == -- ]] && { dashdash=1; continue; }
			_utmkit_optinfo "$tool" "${w%%=*}"
			if [[ $tool == vm-qmp && $_u_long == --socket ]]; then
				hassock=1
				[[ $w == *=* ]] && _utmkit_dequote "${w#*=}" && _u_target=(-s "$_u_out")
			fi
			[[ $w != --*=* && -n $_u_arg && $_u_arg != . ]] && skip=1
			continue
		fi
		if ((i < _u_cword)); then pos+=("$w"); else after+=("$w"); fi
	done
	if [[ $tool == vm-qmp && $hassock == 0 ]]; then
		((${#pos[@]})) && { _utmkit_dequote "${pos[0]}" && _u_target=("$_u_out"); }
		((${#pos[@]} || !${#after[@]})) || { _utmkit_dequote "${after[0]}" && _u_target=("$_u_out"); }
	fi

	# An option's value: "--opt VALUE" or "--opt=VALUE".
	if ((optval)); then
		_utmkit_optvalue "$tool" "${_u_words[_u_cword - 1]}"
		return 0
	fi
	if ((!dashdash)) && [[ $_u_w == --*=* ]]; then
		_u_cur=${_u_w#*=}
		_utmkit_optvalue "$tool" "${_u_w%%=*}"
		return 0
	fi
	if ((!dashdash)) && [[ $_u_w == -* ]]; then
		local o a l
		_utmkit_opts "$tool"
		while IFS=$' \t' read -r o a l; do
			_utmkit_add "$o"
		done <<<"$_u_out"
		[[ $tool == vm-qmp && ${#pos[@]} -eq $((1 - hassock)) ]] && _utmkit_add -
		return 0
	fi

	local n=${#pos[@]} v IFS=$'\n'
	case $tool in
	vm-create)
		((n == 0)) && _utmkit_files -d ;;
	vm-argv | vm-run | vm-migrate)
		((n == 0)) && _utmkit_bundles ;;
	vm-stop | vm-ls)
		_utmkit_bundles ;;
	vm-pack | vm-screen)
		if ((n == 0)); then _utmkit_bundles; elif ((n == 1)); then _utmkit_files; fi ;;
	vm-guest)
		if ((n == 0)); then
			_utmkit_bundles
		elif ((n == 1)); then
			_utmkit_add exec cp ip ping info time-sync fsfreeze fsthaw shutdown
		elif [[ ${pos[1]} == cp ]]; then
			_utmkit_files
		fi ;;
	vm-config)
		if ((n == 0)); then
			_utmkit_verbs -n vm-config
			v=$_u_out
			for w in ${v:-keys}; do _utmkit_add "$w"; done
			_utmkit_bundles
			return 0
		fi
		[[ ${pos[0]} == keys ]] && return 0
		if ((n == 1)); then
			_utmkit_verbs vm-config
			v=$_u_out
			[[ -n $v ]] || v=$'get\nset\nadd\nunset\nshow\nvalidate\nedit'
			for w in $v; do [[ $w != keys ]] && _utmkit_add "$w"; done
			return 0
		fi
		case ${pos[1]} in
		get) ((n == 2)) && _utmkit_config_keys "${pos[0]}" ;;
		unset) _utmkit_config_keys "${pos[0]}" ;;
		set | add)
			if (((n - 2) % 2 == 0)); then
				[[ ${pos[1]} == add && n -gt 2 ]] || _utmkit_config_keys "${pos[0]}"
			else
				_utmkit_config_value "${pos[n - 1]}"
			fi ;;
		show)
			_utmkit_add --json --raw ;;
		esac ;;
	vm-qmp)
		local c=$((n - 1 + hassock)) # COMMAND's index among pos, counted from the end
		if ((c < 0)); then
			_utmkit_bundles
		elif ((c == 0)); then
			_utmkit_add -
			((${#_u_target[@]})) || return 0
			for v in $(_utmkit_qmp_names "${_u_target[@]}"); do _utmkit_add "$v"; done
		elif [[ ${pos[n - c]} != - && ${#_u_target[@]} -gt 0 ]]; then
			# the command's arguments, KEY=VALUE
			for v in $(_utmkit_qmp_args "${_u_target[@]}" "${pos[n - c]}"); do
				_utmkit_add_nospace "$v"
			done
		fi ;;
	vm-disk)
		if ((n == 0)); then
			_utmkit_verbs -n vm-disk
			v=$_u_out
			for w in ${v:-mkiso}; do _utmkit_add "$w"; done
			_utmkit_bundles
			return 0
		fi
		# mkiso OUT.iso PATH...: no bundle
		[[ ${pos[0]} == mkiso && ! -d ${pos[0]} ]] && { _utmkit_files; return 0; }
		if ((n == 1)); then
			_utmkit_verbs vm-disk
			v=$_u_out
			[[ -n $v ]] || v=$'list\ncreate\nattach\ndetach\ninsert\neject\nresize\nsnapshot\ninspect\nls\ncopy-in\ncopy-out\nmkfs\ncloud-init'
			for w in $v; do _utmkit_add "$w"; done
			return 0
		fi
		case ${pos[1]} in
		detach | eject | resize | ls | mkfs | copy-in | copy-out)
			if ((n == 2)); then
				_utmkit_drive_ids "${pos[0]}"
			elif [[ ${pos[1]} == mkfs ]]; then
				((n == 3)) && _utmkit_add ext4 ext3 ext2 xfs btrfs vfat ntfs
			elif [[ ${pos[1]} == copy-in ]]; then
				_utmkit_files
			elif [[ ${pos[1]} == copy-out ]]; then
				((n >= 4)) && _utmkit_files -d
			fi ;;
		insert)
			if ((n == 2)); then _utmkit_drive_ids "${pos[0]}"; elif ((n == 3)); then _utmkit_files; fi ;;
		attach | cloud-init) # FILE, USER_DATA
			((n == 2)) && _utmkit_files ;;
		snapshot)
			if ((n == 2)); then
				_utmkit_add create list revert delete
			elif ((n == 3)) && [[ ${pos[2]} == revert || ${pos[2]} == delete ]]; then
				for v in $(_utmkit_snapshots "${pos[0]}"); do _utmkit_add "$v"; done
			fi ;;
		esac ;;
	*)
		if ((n == 0)); then _utmkit_bundles; else _utmkit_files; fi ;;
	esac
	return 0
}

complete -F _utmkit vm-create vm-config vm-argv vm-run vm-stop vm-ls vm-qmp vm-disk vm-pack vm-screen vm-migrate vm-guest
