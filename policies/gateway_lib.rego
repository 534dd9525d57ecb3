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

# --- secrets in parameters ---
#
# A parameter is secret when its key, lower-cased and with everything but
# letters and digits removed, contains a secret word (normalized the same
# way): "PASSWORD", "db_password", "X-Api-Key", "apiKey", "client_secret",
# "access_token" and "credentials" all are. Keys are matched at any depth,
# through objects and arrays; a secret value is removed whole, whatever it
# holds.

# Secret words that always apply: data can add words, never remove these.
builtin_secret_words := {
	"password", "passwd", "pwd", "passphrase", "secret", "token",
	"api_key", "authorization", "credential", "private_key", "cookie",
}

secret_words contains word_letters(word) if some word in builtin_secret_words

# More words from policy data: data.sark.secrets.words, an array of
# strings (other values are ignored; a word with no letter or digit too).
secret_words contains w if {
	is_array(data.sark.secrets.words)
	some word in data.sark.secrets.words
	is_string(word)
	w := word_letters(word)
	w != ""
}

word_letters(name) := regex.replace(lower(name), `[^a-z0-9]`, "")

secret_key(key) if {
	is_string(key)
	letters := word_letters(key)
	some word in secret_words
	contains(letters, word)
}

# Paths (arrays of keys and indices) of the values of input.parameters
# held under a secret key.
secret_paths contains path if {
	walk(input.parameters, [path, _])
	secret_key(path[count(path) - 1])
}

# Only the outermost of nested secret paths: removing a value removes what
# it holds, and a patch may not remove a path twice.
outer_secret_paths contains path if {
	some path in secret_paths
	not under_secret_path(path)
}

under_secret_path(path) if {
	some i, _ in path
	i > 0
	array.slice(path, 0, i) in secret_paths
}

# input.parameters without its secret values; undefined unless it is an
# object.
parameters_without_secrets := json.patch(
	input.parameters,
	[{"op": "remove", "path": path} | some path in outer_secret_paths],
) if is_object(input.parameters)

# A grant in policy data lets a tool receive secret values:
# data.sark.secrets.exempt is {"<server_name>": ["<tool_name>", ...]}, names
# compared exactly.
secrets_exempt if {
	tools := data.sark.secrets.exempt[input.server_name]
	is_array(tools)
	is_string(input.tool_name)
	input.tool_name in tools
}
