# Intermediate rules of the gateway policy (package sark.gateway), in their
# own package so that the gateway document holds only its result fields.
package sark.lib.gateway

# Roles under which the request is permitted, before deny rules apply.
granted contains "admin" if is_admin

granted contains "analyst" if {
	"analyst" in roles
	analyst_tool
}

granted contains "developer" if {
	"developer" in roles
	developer_tool
}

analyst_tool if {
	tool_invoke_on("postgres-mcp")
	input.tool_name == "execute_query"
	startswith(sql_query, "select")
}

analyst_tool if {
	tool_invoke_on("postgres-mcp")
	input.tool_name in {"list_tables", "describe_table"}
}

developer_tool if {
	tool_invoke_on("github-mcp")
	input.tool_name in {
		"get_repo", "list_repos", "search_repos",
		"get_issue", "list_issues", "create_issue",
	}
}

is_admin if "admin" in roles

# String roles of the user; empty unless user.roles is an array.
roles contains role if {
	is_array(input.user.roles)
	some role in input.user.roles
	is_string(role)
}

# parameters.query, lower-cased, leading whitespace removed; undefined
# unless it is a string.
sql_query := lower(trim_left(input.parameters.query, " \t\r\n\f\u000b")) if {
	is_string(input.parameters.query)
}

user_email := input.user.email if {
	is_string(input.user.email)
} else := "unknown"

tool_invoke_on(server) if {
	input.action == "gateway:tool:invoke"
	input.server_name == server
}

# Top-level input string field, or "unknown" when missing or not a string.
input_text(key) := input[key] if {
	is_string(input[key])
} else := "unknown"
