/* Members of json-c objects (see jsonobj.h). */
#include "jsonobj.h"

struct json_object *json_member(struct json_object *o, const char *key)
{
	struct json_object *v;
	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

const char *json_member_str(struct json_object *o, const char *key)
{
	struct json_object *v = json_member(o, key);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

bool json_member_bool(struct json_object *o, const char *key)
{
	struct json_object *v = json_member(o, key);
	return v && json_object_get_boolean(v);
}

void json_set_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

void json_set_bool(struct json_object *o, const char *key, bool v)
{
	json_object_object_add(o, key, json_object_new_boolean(v));
}
