/* The model as JSON (vm-config show --json), from the field table. */
#include <json-c/json.h>
#include <stdlib.h>

#include "config.h"

static json_object *fields_json(const void *base, const struct field *fs)
{
	json_object *o = json_object_new_object();
	for (const struct field *f = fs; f->key; f++) {
		const void *p = (const char *)base + f->offset;
		json_object *v = NULL;
		switch (f->type) {
		case FT_STR:
		case FT_ENUM:
			v = *(char *const *)p ? json_object_new_string(*(char *const *)p) : NULL;
			break;
		case FT_INT:
		case FT_MIB:
			v = json_object_new_int64(*(const int64_t *)p);
			break;
		case FT_BOOL:
			v = json_object_new_boolean(*(const bool *)p);
			break;
		case FT_LIST: {
			const struct strv *sv = p;
			v = json_object_new_array();
			for (size_t i = 0; i < sv->n; i++)
				json_object_array_add(v, json_object_new_string(sv->v[i]));
			break;
		}
		}
		json_object_object_add(o, f->key, v);
	}
	return o;
}

struct json_object *config_json(const struct vm_config *c)
{
	json_object *root = fields_json(c, config_sections[SEC_TOP].fields);
	for (int k = SEC_DRIVE; k < SEC_COUNT; k++) {
		json_object *arr = json_object_new_array();
		size_t n = config_section_count(c, k);
		for (size_t i = 0; i < n; i++) {
			void *e = config_section_elem(c, k, i);
			json_object *o = fields_json(e, config_sections[k].fields);
			json_object_object_add(o, "id", json_object_new_string(*(char **)e));
			json_object_array_add(arr, o);
		}
		/* plural keys: drives, nets, serials, shares */
		char *key = xasprintf("%ss", config_sections[k].name);
		json_object_object_add(root, key, arr);
		free(key);
	}
	return root;
}

char *config_format_json(const struct vm_config *c, bool pretty)
{
	json_object *root = config_json(c);
	const char *s = json_object_to_json_string_ext(
	    root, (pretty ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN) | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = xstrdup(s);
	json_object_put(root);
	return out;
}
