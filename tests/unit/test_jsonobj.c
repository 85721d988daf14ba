/* Members of json-c objects (lib/jsonobj.c): absent, of another type, or
 * read through a missing object all read as absent. */
#include "jsonobj.h"
#include "testutil.h"

static void members(void **state)
{
	struct json_object *o =
	    json_tokener_parse("{\"s\":\"x\",\"n\":1,\"t\":true,\"f\":false,\"z\":null,\"o\":{\"s\":\"y\"}}");
	assert_non_null(o);
	assert_string_equal(json_member_str(o, "s"), "x");
	assert_null(json_member_str(o, "n")); /* not a string */
	assert_null(json_member_str(o, "missing"));
	assert_null(json_member_str(NULL, "s"));
	assert_string_equal(json_member_str(json_member(o, "o"), "s"), "y");
	assert_null(json_member_str(json_member(o, "none"), "s")); /* chained through absence */
	assert_null(json_member(o, "z"));			   /* null reads as absent */
	assert_true(json_member_bool(o, "t"));
	assert_false(json_member_bool(o, "f"));
	assert_false(json_member_bool(o, "missing"));
	assert_false(json_member_bool(NULL, "t"));
	json_object_put(o);
}

static void setters(void **state)
{
	struct json_object *o = json_object_new_object();
	json_set_str(o, "a", "x");
	json_set_str(o, "b", NULL);
	json_set_bool(o, "c", true);
	json_set_bool(o, "d", false);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"a\":\"x\",\"b\":null,\"c\":true,\"d\":false}");
	json_set_str(o, "a", "y"); /* replaces */
	assert_string_equal(json_member_str(o, "a"), "y");
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(members),
	    cmocka_unit_test(setters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
