/* Members of json-c objects, read without checks at every call: a missing
 * object, a missing member and one of another type all read as absent. */
#ifndef VM_JSONOBJ_H
#define VM_JSONOBJ_H

#include <json-c/json.h>
#include <stdbool.h>

/* o's member key, or NULL (also when o is NULL). Borrowed. */
struct json_object *json_member(struct json_object *o, const char *key);
/* The member when it is a string, else NULL. Borrowed. */
const char *json_member_str(struct json_object *o, const char *key);
/* The member's truth (json-c's, as json_object_get_boolean), false when absent. */
bool json_member_bool(struct json_object *o, const char *key);
/* Sets key to the string v, or to null when v is NULL. */
void json_set_str(struct json_object *o, const char *key, const char *v);
void json_set_bool(struct json_object *o, const char *key, bool v);

#endif
