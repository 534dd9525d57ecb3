# Gateway authorization policy.
#
# Queried as the package document, POST /v1/data/sark/gateway, with the flat
# input: action, server_name, tool_name, parameters, sensitivity_level,
# user {id, email, roles, teams}, context, gateway_metadata.
#
# The document holds exactly these fields:
#   allow                bool, default false
#   reason               string, always exactly one value
#   filtered_parameters  object: parameters without secret values, at any
#                        depth, unless policy data exempts the tool; for
#                        gateway:tool:discover {"tools": [visible names]}
#   cache_ttl            60 on allow; on deny data.sark.deny_cache_ttl
#                        (5 in policies/data.json), else 0: never cached
#   deny                 set of messages; any message overrides an allow
#
# Intermediate rules live in sark.lib.gateway (gateway_lib.rego), out of
# this document.  Every rule yields at most one value, and a missing or
# ill-typed input field only makes a condition false: it never makes the
# document undefined.
package sark.gateway

import data.sark.lib.gateway as lib

default allow := false

allow if {
	count(lib.granted) > 0
	count(deny) == 0
}

# One value, picked by precedence admin > analyst > developer > tool
# discovery > grants in policy data among the grants that matched, then
# deny messages, then the generic denial.
reason := sprintf("Allowed: admin user %s can perform any action", [lib.user_email]) if {
	allow
	"admin" in lib.granted
} else := sprintf("Allowed: analyst %s can query database", [lib.user_email]) if {
	allow
	"analyst" in lib.granted
} else := sprintf("Allowed: developer %s can access GitHub tools", [lib.user_email]) if {
	allow
	"developer" in lib.granted
} else := sprintf("Allowed: %s may see %d of the %d tools listed on %s", [
	lib.user_email, count(lib.visible_tools), count(input.parameters.tools), lib.input_text("server_name"),
]) if {
	allow
	"discover" in lib.granted
} else := sprintf("Allowed: role %s is granted %s on %s", [
	lib.grant_role, lib.grant_subject, lib.input_text("server_name"),
]) if {
	allow
	"grant" in lib.granted
} else := concat("; ", sort(deny)) if {
	count(deny) > 0
} else := sprintf(
	"Denied: insufficient permissions for %s on %s/%s",
	[lib.input_text("action"), lib.input_text("server_name"), lib.input_text("tool_name")],
)

cache_ttl := 60 if allow

else := lib.deny_cache_ttl

# A tool list to filter (gateway:tool:discover) is answered with the
# visible tools.  Otherwise secret values (sark.lib.gateway: keys containing a secret word, at any
# depth) are removed for every tool and every caller, unless policy data
# exempts the tool; a patch that cannot be applied yields {}, never the
# parameters as given.
filtered_parameters := {"tools": lib.visible_tools} if {
	input.action == "gateway:tool:discover"
	lib.tool_list
} else := lib.parameters_without_secrets if {
	is_object(input.parameters)
	not lib.secrets_exempt
} else := input.parameters if {
	is_object(input.parameters)
	lib.secrets_exempt
} else := {}

# Non-admins never run destructive SQL.
deny contains "Only admins can execute destructive SQL operations" if {
	not lib.is_admin
	input.server_name == "postgres-mcp"
	input.tool_name == "execute_mutation"
}

# The SQL of parameters.query on postgres-mcp, for every non-admin and
# every tool (sark.lib.gateway): whole words only ("deleted_at" is fine,
# "; DROP TABLE x" is not), read anywhere in the query, comments and
# string literals included.
deny contains "DROP, DELETE, TRUNCATE queries require admin role" if {
	not lib.is_admin
	input.server_name == "postgres-mcp"
	lib.sql_destructive
}

deny contains "Only admins can run SQL that changes data, schema, settings or privileges" if {
	not lib.is_admin
	input.server_name == "postgres-mcp"
	lib.sql_writes
}

deny contains "Only admins can run more than one SQL statement per query" if {
	not lib.is_admin
	input.server_name == "postgres-mcp"
	lib.sql_chained
}

deny contains "Only admins can use Unicode escapes (U&) in SQL" if {
	not lib.is_admin
	input.server_name == "postgres-mcp"
	lib.sql_unicode_escape
}

deny contains "Only admins can close or delete GitHub issues" if {
	not lib.is_admin
	input.server_name == "github-mcp"
	input.tool_name in {"close_issue", "delete_issue"}
}
