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

granted contains "grant" if {
	input.action == "gateway:tool:invoke"
	table_grants_tool(input.tool_name)
}

granted contains "grant" if {
	input.action in server_actions
	table_grants_server
}

granted contains "discover" if {
	input.action == "gateway:tool:discover"
	count(visible_tools) > 0
}

analyst_tools := {"execute_query", "list_tables", "describe_table"}

developer_tools := {
	"get_repo", "list_repos", "search_repos",
	"get_issue", "list_issues", "create_issue",
}

analyst_tool if {
	tool_invoke_on("postgres-mcp")
	input.tool_name == "execute_query"
	select_query
}

analyst_tool if {
	tool_invoke_on("postgres-mcp")
	input.tool_name in (analyst_tools - {"execute_query"})
}

developer_tool if {
	tool_invoke_on("github-mcp")
	input.tool_name in developer_tools
}

# --- grants in policy data ---
#
# data.sark.grants is {"<role>": {"<server_name>": ["<tool_name>", ...]}},
# names compared exactly; "*" in a list grants every tool of that server.
# A role with a list for a server, even an empty one, may also use the
# server itself: MCP initialize, ping, lists, notifications, the SSE stream
# and session end (gateway:server:access), resources/read
# (gateway:resource:read) and prompts/get (gateway:prompt:get).  Values of
# any other shape grant nothing.

server_actions := {"gateway:server:access", "gateway:resource:read", "gateway:prompt:get"}

# The caller's roles that have a grant list for input.server_name, with
# their lists.
grant_lists[role] := tools if {
	some role in roles
	tools := data.sark.grants[role][input.server_name]
	is_array(tools)
}

table_grants_server if count(grant_lists) > 0

table_grants_tool(name) if {
	some tools in grant_lists
	list_grants(tools, name)
}

list_grants(tools, name) if {
	is_string(name)
	some granted_name in tools
	granted_name in {"*", name}
}

# The first role, by name, whose grants let the caller do what it asks.
grant_role := min({role |
	some role, tools in grant_lists
	grant_role_applies(tools)
})

grant_role_applies(_) if {
	input.action in server_actions
}

grant_role_applies(tools) if {
	input.action == "gateway:tool:invoke"
	list_grants(tools, input.tool_name)
}

# What a grant lets the caller do, for the reason: the tool, or the action.
grant_subject := input.tool_name if {
	input.action == "gateway:tool:invoke"
} else := input_text("action")

# --- visible tools (MCP tools/list) ---
#
# The tools a caller may invoke on input.server_name, whatever the
# arguments: a tool outside this set is refused on every call, one inside
# may still be refused for some arguments.  Every rule that grants
# gateway:tool:invoke must be covered here, or a hidden tool could be
# called.
may_invoke(name) if {
	is_string(name)
	is_admin
}

may_invoke(name) if table_grants_tool(name)

may_invoke(name) if {
	is_string(name)
	"analyst" in roles
	input.server_name == "postgres-mcp"
	name in analyst_tools
}

may_invoke(name) if {
	is_string(name)
	"developer" in roles
	input.server_name == "github-mcp"
	name in developer_tools
}

# gateway:tool:discover asks which of the names in parameters.tools (an
# array: the names of an MCP server's tools/list answer) the caller may
# invoke; they are answered in filtered_parameters.tools, in their order.
tool_list if is_array(input.parameters.tools)

visible_tools := [name |
	some name in input.parameters.tools
	may_invoke(name)
] if tool_list

is_admin if "admin" in roles

# How long a denial may be cached, in seconds: data.sark.deny_cache_ttl when
# it is a whole number >= 0, else 0 (never cached).  sarkd caps it with
# CACHE_NEGATIVE_TTL.  A few seconds keep a denied caller from flooding OPA
# with the same question.
deny_cache_ttl := t if {
	t := data.sark.deny_cache_ttl
	is_number(t)
	t >= 0
	t == floor(t)
} else := 0

# String roles of the user; empty unless user.roles is an array.
roles contains role if {
	is_array(input.user.roles)
	some role in input.user.roles
	is_string(role)
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
# the letters a-z and digits removed, contains a secret word (normalized
# the same way): "PASSWORD", "db_password", "X-Api-Key", "apiKey",
# "client_secret", "access_token" and "credentials" all are. Keys are
# matched at any depth, through objects and arrays; a secret value is
# removed whole, whatever it holds.

# Secret words that always apply (normalized): data can add words, never
# remove these.
builtin_secret_words := {
	"password", "passwd", "pwd", "passphrase", "secret", "token",
	"apikey", "authorization", "credential", "privatekey", "cookie",
}

# More words from policy data: data.sark.secrets.words, an array of
# strings (other values are ignored; a word with no letter or digit too).
secret_words contains w if {
	is_array(data.sark.secrets.words)
	some word in data.sark.secrets.words
	is_string(word)
	not word in builtin_secret_words
	w := key_letters(word)
	w != ""
}

secret_words contains word if some word in builtin_secret_words

key_letters(name) := regex.replace(lower(name), `[^a-z0-9]`, "")

# Normalized words hold only a-z and 0-9: joined, they are a pattern that
# matches a name holding any of them.
secret_pattern := concat("|", secret_words)

secret_key(key) if {
	is_string(key)
	regex.match(secret_pattern, key_letters(key))
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
parameters_without_secrets := input.parameters if {
	is_object(input.parameters)
	count(secret_paths) == 0
} else := json.patch(
	input.parameters,
	[{"op": "remove", "path": path} | some path in outer_secret_paths],
) if {
	is_object(input.parameters)
}

# A grant in policy data lets a tool receive secret values:
# data.sark.secrets.exempt is {"<server_name>": ["<tool_name>", ...]}, names
# compared exactly.
secrets_exempt if {
	tools := data.sark.secrets.exempt[input.server_name]
	is_array(tools)
	is_string(input.tool_name)
	input.tool_name in tools
}

# --- SQL: parameters.query of postgres-mcp ---
#
# The word and ";" checks read the whole query, comments and string
# literals included: what the database would ignore there is refused all
# the same, so no comment, quoting, case or spacing can hide a word from
# them. They are a guard for analysts, not a sandbox: a function defined in
# the database may still write, so the database role of postgres-mcp should
# be read-only.

# parameters.query, lower-cased; undefined unless it is a string.
sql_text := lower(input.parameters.query) if is_string(input.parameters.query)

# The whitespace and comments the query starts with (PostgreSQL's: "--"
# to the end of the line, "/* */").
sql_lead := regex.find_n(`^(?:[ \t\n\r\f\v]+|--[^\n\r]*|(?s:/\*.*?\*/))*`, sql_text, 1)[0]

# The query from its first token on.
sql_statement := substring(sql_text, count(sql_lead), -1)

# The query's first token is the word SELECT (so "WITH ... SELECT" is
# not one).
select_query if {
	regex.match(`^select(?:[^a-z0-9_$]|$)`, sql_statement)
	not nested_lead_comment
}

# PostgreSQL nests block comments: in "/* /* */ select */ notify x" the
# comment ends after "select */". A leading comment that holds a "/*"
# (also one made of a "/" and the "*" of its closing "*/", as in "/*/*/")
# may end later than sql_lead ends it, so the query is not taken to start
# with SELECT.
nested_lead_comment if {
	some comment in regex.find_n(`(?s)/\*.*?\*/`, sql_lead, -1)
	contains(substring(comment, 2, -1), "/*")
}

# A ";" anywhere but as the query's last character (whitespace after it
# aside): two statements, or one hidden in a comment or string literal.
sql_chained if contains(regex.replace(sql_text, `;[ \t\n\r\f\v]*$`, ""), ";")

sql_destructive if count(sql_words & sql_destructive_words) > 0

sql_writes if count(sql_words & sql_write_words) > 0

# U&'...' strings and U&"..." names can spell a word with escapes the
# word check cannot read (U&"set\005fconfig" is set_config).
sql_unicode_escape if regex.match(`u&["']`, sql_text)

# The words of the query that stand alone: runs of letters and "_" not
# preceded by a letter or "_" and not followed by a letter, digit or "_"
# ("updated_at", "created_by" and "is_set" are words of their own, holding
# no UPDATE, CREATE or SET). A digit before a word is a boundary: older
# PostgreSQL reads "select 1into t" as "select 1 into t". A run followed
# by digits ("update1") is kept with them, so it is no word of the lists
# below, none of which holds a digit. Any other character is a boundary,
# "$" too: "$$update$$" holds UPDATE.
sql_words contains word if some word in regex.find_n(`[a-z_]+[0-9]*`, sql_text, -1)

sql_destructive_words := {"drop", "delete", "truncate"}

# Words that change data, schema, settings, privileges or the server, run
# code, or (SELECT ... INTO) create a table; then built-in functions with
# such effects.
sql_write_words := {
	"insert", "update", "merge", "upsert", "into", "copy",
	"create", "alter", "comment", "security", "refresh", "import", "attach",
	"detach", "reindex", "cluster", "vacuum", "analyze", "analyse",
	"grant", "revoke", "reassign", "set", "reset", "lock",
	"call", "execute", "exec", "do", "prepare", "load", "pragma",
	"notify", "checkpoint",
	"set_config", "nextval", "setval", "pg_notify",
	"dblink", "dblink_exec", "dblink_send_query",
	"lo_import", "lo_export", "lo_unlink", "lo_create", "lo_creat",
	"lo_from_bytea", "lo_put", "lowrite", "lo_truncate",
	"pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_file_write",
	"pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
	"pg_rotate_logfile", "pg_switch_wal", "pg_create_restore_point", "pg_promote",
	"pg_logical_emit_message", "pg_create_logical_replication_slot",
	"pg_create_physical_replication_slot", "pg_drop_replication_slot",
}
