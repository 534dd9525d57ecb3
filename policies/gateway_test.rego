package sark.gateway_test

import data.sark.gateway

# Every test evaluates the whole package document, as sarkd does, so that a
# rule yielding two values would fail here as an eval_conflict_error.
decide(inp) := d if {
	d := gateway with input as inp
}

request(server, tool, params, roles) := {
	"action": "gateway:tool:invoke",
	"server_name": server,
	"tool_name": tool,
	"parameters": params,
	"sensitivity_level": "medium",
	"user": {"id": "u1", "email": "u1@example.com", "roles": roles, "teams": ["t1"]},
	"context": {},
	"gateway_metadata": {"request_id": "r1"},
}

sql(query, roles) := request("postgres-mcp", "execute_query", {"query": query}, roles)

github(tool, roles) := request("github-mcp", tool, {"repo": "o/r"}, roles)

action_request(action, roles) := {
	"action": action,
	"server_name": "postgres-mcp",
	"user": {"id": "u1", "email": "u1@example.com", "roles": roles},
}

admin_reason := "Allowed: admin user u1@example.com can perform any action"

analyst_reason := "Allowed: analyst u1@example.com can query database"

developer_reason := "Allowed: developer u1@example.com can access GitHub tools"

msg_destructive := "DROP, DELETE, TRUNCATE queries require admin role"

msg_writes := "Only admins can run SQL that changes data, schema, settings or privileges"

msg_chained := "Only admins can run more than one SQL statement per query"

msg_unicode := "Only admins can use Unicode escapes (U&) in SQL"

# denials are cached for data.sark.deny_cache_ttl (5 in policies/data.json)
denied_allow(d) if {
	d.allow == false
	d.cache_ttl == 5
}

allowed(d, why) if {
	d.allow == true
	d.cache_ttl == 60
	d.reason == why
	count(d.deny) == 0
}

# --- how long a denial is cached ---

test_deny_cache_ttl_from_data if {
	d := gateway with input as {"action": "gateway:tool:invoke", "server_name": "github-mcp", "tool_name": "close_issue", "user": {"id": "u1", "roles": ["developer"]}}
		with data.sark.deny_cache_ttl as 30
	d.allow == false
	d.cache_ttl == 30
}

test_deny_cache_ttl_zero_or_invalid_is_never if {
	q := {"action": "gateway:tool:invoke", "server_name": "github-mcp", "tool_name": "close_issue", "user": {"id": "u1", "roles": ["developer"]}}
	every ttl in [0, -1, 2.5, "5", null, true] {
		d := gateway with input as q with data.sark.deny_cache_ttl as ttl
		d.cache_ttl == 0
	}
}

test_allow_cache_ttl_not_from_data if {
	d := gateway with input as {"action": "gateway:tool:invoke", "server_name": "github-mcp", "tool_name": "get_repo", "user": {"id": "u1", "roles": ["developer"]}}
		with data.sark.deny_cache_ttl as 1
	d.allow == true
	d.cache_ttl == 60
}

# --- admin ---

test_admin_any_tool if {
	allowed(decide(request("other-mcp", "anything", {}, ["admin"])), admin_reason)
}

test_admin_destructive_sql if {
	allowed(decide(sql("DROP TABLE users", ["admin"])), admin_reason)
	allowed(decide(request("postgres-mcp", "execute_mutation", {}, ["admin"])), admin_reason)
}

test_admin_close_issue if {
	allowed(decide(github("close_issue", ["admin"])), admin_reason)
	allowed(decide(github("delete_issue", ["admin"])), admin_reason)
}

test_admin_any_action if {
	every action in [
		"gateway:server:access", "gateway:server:list", "gateway:server:info",
		"gateway:tool:discover", "gateway:resource:read", "gateway:prompt:get",
	] {
		allowed(decide(action_request(action, ["admin"])), admin_reason)
	}
}

test_non_admin_other_actions_denied if {
	every action in ["gateway:server:access", "gateway:server:list", "gateway:resource:read"] {
		d := decide(action_request(action, ["analyst", "developer"]))
		denied_allow(d)
		d.reason == sprintf("Denied: insufficient permissions for %s on postgres-mcp/unknown", [action])
	}
}

# --- analyst ---

test_analyst_select if {
	allowed(decide(sql("SELECT * FROM users", ["analyst"])), analyst_reason)
}

test_analyst_select_leading_whitespace if {
	allowed(decide(sql(" \n\t Select id FROM t", ["analyst"])), analyst_reason)
}

test_analyst_list_and_describe_tables if {
	allowed(decide(request("postgres-mcp", "list_tables", {}, ["analyst"])), analyst_reason)
	allowed(decide(request("postgres-mcp", "describe_table", {"table": "t"}, ["analyst"])), analyst_reason)
}

test_analyst_non_select_denied if {
	every q in ["VALUES (1)", "TABLE users", "explain select 1", "show all", "(select 1)", "selectx from t", ""] {
		d := decide(sql(q, ["analyst"]))
		denied_allow(d)
		d.deny == set()
		d.reason == "Denied: insufficient permissions for gateway:tool:invoke on postgres-mcp/execute_query"
	}
}

test_analyst_update_denied if {
	d := decide(sql("UPDATE t SET a = 1", ["analyst"]))
	denied_allow(d)
	d.deny == {msg_writes}
	d.reason == msg_writes
}

test_analyst_insert_denied if {
	denied_allow(decide(sql("insert into t values (1)", ["analyst"])))
}

test_analyst_wrong_server_denied if {
	denied_allow(decide(request("mysql-mcp", "execute_query", {"query": "select 1"}, ["analyst"])))
}

test_analyst_other_tool_denied if {
	denied_allow(decide(request("postgres-mcp", "create_table", {}, ["analyst"])))
}

test_analyst_wrong_action_denied if {
	inp := object.union(sql("select 1", ["analyst"]), {"action": "gateway:tool:discover"})
	denied_allow(decide(inp))
}

test_analyst_github_denied if {
	denied_allow(decide(github("get_repo", ["analyst"])))
}

test_analyst_deleted_at_allowed if {
	allowed(decide(sql("SELECT id, deleted_at FROM users WHERE deleted_at IS NULL", ["analyst"])), analyst_reason)
}

test_analyst_word_lookalikes_allowed if {
	allowed(decide(sql("select dropped, truncated_at, undelete from t", ["analyst"])), analyst_reason)
}

# --- developer ---

test_developer_github_tools if {
	every tool in ["get_repo", "list_repos", "search_repos", "get_issue", "list_issues", "create_issue"] {
		allowed(decide(github(tool, ["developer"])), developer_reason)
	}
}

test_developer_other_github_tool_denied if {
	denied_allow(decide(github("merge_pull_request", ["developer"])))
}

test_developer_wrong_server_denied if {
	denied_allow(decide(request("gitlab-mcp", "get_repo", {}, ["developer"])))
}

test_developer_sql_denied if {
	denied_allow(decide(sql("select 1", ["developer"])))
}

# --- deny rules ---

test_deny_execute_mutation if {
	d := decide(request("postgres-mcp", "execute_mutation", {"query": "x"}, ["analyst"]))
	denied_allow(d)
	d.deny == {"Only admins can execute destructive SQL operations"}
	d.reason == "Only admins can execute destructive SQL operations"
}

test_deny_destructive_words if {
	every q in [
		"DROP TABLE users",
		"delete from users",
		"TRUNCATE users",
		"SELECT * FROM t WHERE 1=1 OR (DELETE)",
		"select 1 /* drop */",
		"select 1 -- delete",
		"select\n\tdrop",
		"select 1drop",
	] {
		d := decide(sql(q, ["analyst"]))
		denied_allow(d)
		d.deny == {msg_destructive}
	}
}

test_deny_overrides_allow if {
	d := decide(sql("select 1; drop table x", ["analyst"]))
	denied_allow(d)
	d.deny == {msg_destructive, msg_chained}
	d.reason == concat("; ", [msg_destructive, msg_chained])
}

test_deny_destructive_any_postgres_tool if {
	d := decide(request("postgres-mcp", "describe_table", {"query": "drop table t"}, ["analyst"]))
	denied_allow(d)
	d.deny == {msg_destructive}
}

test_no_destructive_deny_on_other_server if {
	d := decide(request("other-mcp", "execute_query", {"query": "drop table t"}, ["analyst"]))
	d.deny == set()
}

test_deny_close_and_delete_issue if {
	every tool in ["close_issue", "delete_issue"] {
		d := decide(github(tool, ["developer"]))
		denied_allow(d)
		d.deny == {"Only admins can close or delete GitHub issues"}
		d.reason == "Only admins can close or delete GitHub issues"
	}
}

test_deny_messages_sorted_and_joined if {
	d := decide(request("postgres-mcp", "execute_mutation", {"query": "delete from t"}, []))
	d.reason == concat("; ", [msg_destructive, "Only admins can execute destructive SQL operations"])
}

# --- analyst SQL: one read-only SELECT ---

# Denied for the analyst with exactly these deny messages, allowed for an
# admin.
refused(q, msgs) if {
	d := decide(sql(q, ["analyst"]))
	denied_allow(d)
	d.deny == msgs
	d.reason == concat("; ", sort(msgs))
	allowed(decide(sql(q, ["admin"])), admin_reason)
}

test_sql_second_statement_refused if {
	every q in [
		"SELECT 1; UPDATE users SET role='admin'",
		"select 1;update users set role='admin'",
		"SELECT/**/1;/**/UPDATE users SET role='admin'",
		"select 1\n;\nupdate\nusers\nset\nrole='admin'",
		"select 1;\tUpdate\tusers\tSET role = 'admin';",
	] {
		refused(q, {msg_writes, msg_chained})
	}
	refused("SeLeCt * FrOm t WHERE x IN (SELECT 1) --; drop", {msg_destructive, msg_chained})
	refused("select 1; select 2", {msg_chained})
	refused("select 1;; ", {msg_chained})
}

# One trailing ";" (whitespace after it aside) is the end of the statement;
# a ";" anywhere else is refused, in a comment or a string literal too.
test_sql_semicolons if {
	allowed(decide(sql("select 1;", ["analyst"])), analyst_reason)
	allowed(decide(sql("select * from t ; \n\t", ["analyst"])), analyst_reason)
	every q in ["select 1; -- done", "select ';' as c", "select 1 /* ; */", "select 1 -- a;b\n"] {
		refused(q, {msg_chained})
	}
}

test_sql_write_words_refused if {
	every q in [
		"INSERT INTO t VALUES (1)",
		"select * into newtable from t",
		"SELECT 1 INTO TEMP t2",
		"select 1into t",
		"select 1e5into t",
		"grant select on t to bob",
		"select 1 where exists (select 1) grant",
		"select *\nfrom t\nfor\nupdate",
		"select *\tfrom t\tFOR\tUPDATE",
		"select 1 /* update */",
		"select 1 -- GRANT",
		"select 1/*x*/update/*y*/",
		"select $$update$$",
		"select \"update\" from t",
		"select * from t where note = 'please update'",
		"SELECT set_config('role', 'admin', false)",
		"select nextval('s')",
		"select pg_catalog.pg_read_file('/etc/passwd')",
		"select \"dblink_exec\"('db', 'x')",
		"select lo_import('/etc/passwd')",
		"update t set a = 1",
	] {
		refused(q, {msg_writes})
	}
}

test_sql_every_write_word_refused if {
	every word in data.sark.lib.gateway.sql_write_words {
		refused(sprintf("select 1 %s", [upper(word)]), {msg_writes})
		refused(sprintf("SELECT 1/**/%s/**/", [word]), {msg_writes})
		refused(sprintf("select 1\n%s\n", [word]), {msg_writes})
		refused(sprintf("select (%s)", [word]), {msg_writes})
	}
}

# Whole words only: a name that merely holds a word is not one.
test_sql_word_lookalikes_allowed if {
	q := concat(" ", [
		"select updated_at, created_by, is_set, last_update, inserted, settings,",
		"reset_at, locked, executed, called_at, docs, loaded, copy_of, commented,",
		"into_x, x_into, update1, intolerance, granted, analyzed, setof_x, todo,",
		"set_configs, nextvalue, undo from t",
	])
	allowed(decide(sql(q, ["analyst"])), analyst_reason)
}

test_sql_leading_comments_allowed if {
	every q in [
		"/* report */ SELECT 1",
		"-- weekly\nselect 1",
		"  /* a */ -- b\n\t/**/select*from t",
		"/* -- */select 1",
		"-- /* \nselect 1",
		"-- ends at a carriage return\rselect 1",
		"/*\n multi\n line\n*/\nSELECT id FROM t",
		"select(1)",
	] {
		allowed(decide(sql(q, ["analyst"])), analyst_reason)
	}
}

# PostgreSQL nests block comments, so what follows a leading comment that
# holds "/*" is still comment: such a query does not start with SELECT.
test_sql_nested_leading_comment_denied if {
	every q in [
		"/* /* */ select */ select 1",
		"/* /* */ select 1",
		"/*/*/ select 1",
		"/* unterminated select 1",
		"-- select 1",
	] {
		d := decide(sql(q, ["analyst"]))
		denied_allow(d)
		d.reason == "Denied: insufficient permissions for gateway:tool:invoke on postgres-mcp/execute_query"
	}
}

# Read-only CTEs are refused too: the query must start with SELECT.
test_sql_with_denied if {
	d := decide(sql("WITH x AS (SELECT 1) SELECT * FROM x", ["analyst"]))
	denied_allow(d)
	d.deny == set()
}

test_sql_unicode_escapes_refused if {
	refused(`select U&"nextv\0061l"('s')`, {msg_unicode})
	refused(`SELECT u&'\0041'`, {msg_unicode})
}

test_sql_rules_on_every_postgres_tool if {
	d := decide(request("postgres-mcp", "describe_table", {"query": "select 1; select 2"}, ["analyst"]))
	denied_allow(d)
	d.deny == {msg_chained}
	d2 := decide(request("postgres-mcp", "list_tables", {"query": "set role admin"}, ["developer"]))
	d2.deny == {msg_writes}
}

test_sql_rules_not_on_other_servers if {
	d := decide(request("other-mcp", "execute_query", {"query": "select 1; update t set a = 1"}, ["analyst"]))
	d.deny == set()
}

# --- roles ---

test_multi_role_user if {
	roles := ["admin", "analyst", "developer"]
	allowed(decide(sql("select 1", roles)), admin_reason)
	allowed(decide(github("get_repo", roles)), admin_reason)
	allowed(decide(sql("drop table t", roles)), admin_reason)
}

test_analyst_developer_reason_follows_rule if {
	roles := ["developer", "analyst"]
	allowed(decide(sql("select 1", roles)), analyst_reason)
	allowed(decide(github("list_issues", roles)), developer_reason)
}

test_empty_roles if {
	d := decide(sql("select 1", []))
	denied_allow(d)
	d.deny == set()
	d2 := decide(sql("drop table t", []))
	d2.deny == {msg_destructive}
	d3 := decide(github("close_issue", []))
	d3.deny == {"Only admins can close or delete GitHub issues"}
}

test_unknown_role if {
	denied_allow(decide(sql("select 1", ["Admin", "viewer"])))
}

# --- parameters: secrets ---

filtered(server, tool, params, roles) := decide(request(server, tool, params, roles)).filtered_parameters

test_secrets_stripped if {
	params := {"query": "select 1", "password": "p", "secret": "s", "api_key": "k", "limit": 5}
	d := decide(request("postgres-mcp", "execute_query", params, ["analyst"]))
	allowed(d, analyst_reason)
	d.filtered_parameters == {"query": "select 1", "limit": 5}
}

test_secrets_stripped_for_admin if {
	d := decide(request("postgres-mcp", "execute_query", {"query": "x", "password": "p"}, ["admin"]))
	allowed(d, admin_reason)
	d.filtered_parameters == {"query": "x"}
}

test_secret_keys_any_case if {
	params := {
		"query": "select 1", "PASSWORD": "p", "Password": "p", "token": "t",
		"TOKEN": "t", "Api_Key": "k", "APIKEY": "k", "Secret": "s",
	}
	filtered("postgres-mcp", "execute_query", params, ["analyst"]) == {"query": "select 1"}
}

test_secret_compound_keys if {
	every key in [
		"db_password", "newPassword", "x-api-key", "X-API-KEY", "apiKey", "api.key",
		"client_secret", "aws_secret_access_key", "access_token", "refreshToken",
		"credentials", "Authorization", "proxy-authorization", "privateKey",
		"private-key", "ssh_private_key", "passwd", "db_pwd", "passphrase",
		"session_cookie", "pass word", "pass\u200bword",
	] {
		filtered("github-mcp", "get_repo", {"repo": "o/r", key: "v"}, ["developer"]) == {"repo": "o/r"}
	}
}

test_secrets_stripped_in_nested_objects if {
	params := {"a": {"password": "p", "host": "h", "b": {"c": {"Token": "t", "port": 5432}}}}
	filtered("postgres-mcp", "execute_query", params, ["admin"]) == {"a": {"host": "h", "b": {"c": {"port": 5432}}}}
}

test_secrets_stripped_in_arrays if {
	params := {"query": "select 1", "arr": [{"secret": "s", "id": 1}, {"id": 2}, "secret", 3]}
	filtered("postgres-mcp", "execute_query", params, ["analyst"]) == {
		"query": "select 1",
		"arr": [{"id": 1}, {"id": 2}, "secret", 3],
	}
}

test_secrets_stripped_in_arrays_of_arrays if {
	params := {"m": [[{"token": "t", "v": 1}], [[{"Password": "p"}], []], [[[{"x": {"api_key": "k"}}]]]]}
	filtered("other-mcp", "tool", params, ["admin"]) == {"m": [[{"v": 1}], [[{}], []], [[[{"x": {}}]]]]}
}

test_secret_value_removed_whole if {
	params := {
		"credentials": {"user": "u", "password": "p"},
		"token": [{"secret": "s"}, "t"],
		"db": {"auth": {"private_key": {"pem": "k"}}, "name": "d"},
	}
	filtered("other-mcp", "tool", params, ["admin"]) == {"db": {"auth": {}, "name": "d"}}
}

# Keys that are JSON Pointer syntax ("/", "~", "-", digits) are removed
# like any other, and the objects holding them keep their other keys.
test_secret_keys_under_pointer_like_keys if {
	params := {
		"a/b": {"token": "t", "k": 1}, "~0": {"secret": "s"}, "-": [{"password": "p"}],
		"0": {"api_key": "k"}, "x": {"~1token": "t", "y/secret": "s", "z": 2},
	}
	filtered("other-mcp", "tool", params, ["admin"]) == {
		"a/b": {"k": 1}, "~0": {}, "-": [{}], "0": {}, "x": {"z": 2},
	}
}

test_non_secret_keys_kept_untouched if {
	params := {
		"query": "select 1",
		"note": "the password is in the vault",
		"tags": ["token", "secret", {"kind": "api_key"}],
		"author": "a", "keyword": "k", "passenger": true, "monkey": null,
		"nested": {"a": [1, 2.5, {"b": null, "c": [[]]}], "d": {}},
		"limit": 10,
	}
	filtered("postgres-mcp", "execute_query", params, ["analyst"]) == params
}

test_secrets_stripped_for_every_tool if {
	gh := {"repo": "o/r", "token": "ghp_x", "api_key": "k", "title": "t"}
	filtered("github-mcp", "create_issue", gh, ["developer"]) == {"repo": "o/r", "title": "t"}
	filtered("github-mcp", "close_issue", gh, ["admin"]) == {"repo": "o/r", "title": "t"}
	pg := {"table": "t", "password": "p", "secret": "s"}
	filtered("postgres-mcp", "describe_table", pg, ["analyst"]) == {"table": "t"}
	filtered("github-mcp", "execute_query", {"query": "select 1", "password": "p"}, ["admin"]) == {"query": "select 1"}
}

test_secrets_stripped_for_every_action if {
	inp := object.union(action_request("gateway:server:access", ["admin"]), {"parameters": {"token": "t", "a": 1}})
	d := decide(inp)
	allowed(d, admin_reason)
	d.filtered_parameters == {"a": 1}
}

test_secrets_stripped_on_deny if {
	d := decide(request("postgres-mcp", "execute_query", {"query": "update t", "secret": "s"}, []))
	denied_allow(d)
	d.filtered_parameters == {"query": "update t"}
}

test_parameters_absent if {
	d := decide(object.remove(sql("select 1", ["admin"]), {"parameters"}))
	d.filtered_parameters == {}
	d.allow == true
}

exempt_vault := {"vault-mcp": ["read_secret", "rotate"]}

vault_params := {"path": "kv/db", "token": "t", "nested": [{"password": "p"}]}

test_exempt_tool_keeps_secrets if {
	d := decide(request("vault-mcp", "read_secret", vault_params, ["admin"])) with data.sark.secrets.exempt as exempt_vault
	allowed(d, admin_reason)
	d.filtered_parameters == vault_params
}

test_exempt_is_per_server_and_tool if {
	stripped := {"path": "kv/db", "nested": [{}]}
	f1 := filtered("vault-mcp", "list", vault_params, ["admin"]) with data.sark.secrets.exempt as exempt_vault
	f1 == stripped
	f2 := filtered("other-mcp", "read_secret", vault_params, ["admin"]) with data.sark.secrets.exempt as exempt_vault
	f2 == stripped
	f3 := filtered("vault-mcp", "Read_Secret", vault_params, ["admin"]) with data.sark.secrets.exempt as exempt_vault
	f3 == stripped
}

test_exempt_malformed_is_ignored if {
	stripped := {"path": "kv/db", "nested": [{}]}
	every exempt in [
		{"vault-mcp": "read_secret"}, {"vault-mcp": {"read_secret": true}},
		["vault-mcp"], "vault-mcp", null,
	] {
		f := filtered("vault-mcp", "read_secret", vault_params, ["admin"]) with data.sark.secrets.exempt as exempt
		f == stripped
	}
}

test_exempt_needs_tool_name if {
	inp := object.remove(request("vault-mcp", "x", vault_params, ["admin"]), {"tool_name"})
	d := decide(inp) with data.sark.secrets.exempt as {"vault-mcp": ["x"]}
	d.filtered_parameters == {"path": "kv/db", "nested": [{}]}
}

# Without the data document the built-in words apply and nothing is exempt.
test_builtin_words_without_data if {
	params := {"query": "select 1", "Password": "p", "a": {"b": [{"x_api_key": "k"}]}, "n": 1}
	f := filtered("postgres-mcp", "execute_query", params, ["analyst"]) with data.sark.secrets as {}
	f == {"query": "select 1", "a": {"b": [{}]}, "n": 1}
}

test_data_words_add_to_builtin if {
	params := {"SSN": "1", "user_ssn": "2", "password": "p", "name": "n"}
	f := filtered("other-mcp", "tool", params, ["admin"]) with data.sark.secrets.words as ["ssn"]
	f == {"name": "n"}
}

test_data_words_cannot_remove_builtin if {
	f := filtered("other-mcp", "tool", {"token": "t", "a": 1}, ["admin"]) with data.sark.secrets.words as []
	f == {"a": 1}
}

# Ill-typed words, and words without a letter or digit (which would match
# every key), are ignored.
test_data_words_malformed_ignored if {
	params := {"a": 1, "b": {"c": 2}, "secret": "s"}
	every words in ["ssn", {"w": "a"}, [1, null, "", "--", " _ ", ["a"]]] {
		f := filtered("other-mcp", "tool", params, ["admin"]) with data.sark.secrets.words as words
		f == {"a": 1, "b": {"c": 2}}
	}
}

# policies/data.json lists every built-in word (so it shows the whole list)
# and exempts nothing.
test_shipped_data if {
	every word in builtin_words {
		word in data.sark.secrets.words
	}
	data.sark.secrets.exempt == {}
}

builtin_words := {
	"password", "passwd", "pwd", "passphrase", "secret", "token",
	"apikey", "authorization", "credential", "privatekey", "cookie",
}

test_builtin_words_in_policy if {
	data.sark.lib.gateway.builtin_secret_words == builtin_words
}

# --- missing fields and wrong types ---

test_empty_input if {
	d := decide({})
	denied_allow(d)
	d.deny == set()
	d.filtered_parameters == {}
	d.reason == "Denied: insufficient permissions for unknown on unknown/unknown"
}

test_non_object_input if {
	every inp in [[], "x", 1, null] {
		d := decide(inp)
		denied_allow(d)
		d.reason == "Denied: insufficient permissions for unknown on unknown/unknown"
	}
}

test_missing_user if {
	d := decide(object.remove(sql("select 1", ["analyst"]), {"user"}))
	denied_allow(d)
}

test_missing_email if {
	inp := object.union(sql("select 1", ["analyst"]), {"user": {"email": null}})
	allowed(decide(inp), "Allowed: analyst unknown can query database")
}

test_roles_not_array if {
	every roles in ["admin", {"role": "admin"}, 1, null] {
		inp := object.union(sql("select 1", []), {"user": {"roles": roles}})
		denied_allow(decide(inp))
	}
}

test_non_string_roles_ignored if {
	allowed(decide(sql("select 1", [1, null, {"r": "admin"}, "analyst"])), analyst_reason)
}

test_query_not_string if {
	every q in [1, null, true, ["select 1"], {"q": "select"}] {
		d := decide(request("postgres-mcp", "execute_query", {"query": q}, ["analyst"]))
		denied_allow(d)
		d.deny == set()
	}
}

test_query_missing if {
	denied_allow(decide(request("postgres-mcp", "execute_query", {}, ["analyst"])))
}

test_parameters_not_object if {
	every params in ["select 1", ["select 1"], 7, null] {
		d := decide(request("postgres-mcp", "execute_query", params, ["analyst"]))
		denied_allow(d)
		d.filtered_parameters == {}
	}
}

test_parameters_not_object_admin if {
	d := decide(request("postgres-mcp", "list_tables", "x", ["admin"]))
	d.allow == true
	d.filtered_parameters == {}
}

test_fields_wrong_types if {
	inp := {
		"action": 1,
		"server_name": ["postgres-mcp"],
		"tool_name": {"name": "execute_query"},
		"parameters": {"query": "select 1"},
		"user": {"email": "u1@example.com", "roles": ["analyst"]},
	}
	d := decide(inp)
	denied_allow(d)
	d.reason == "Denied: insufficient permissions for unknown on unknown/unknown"
}

test_missing_tool_reason if {
	d := decide(object.remove(sql("select 1", ["developer"]), {"tool_name"}))
	d.reason == "Denied: insufficient permissions for gateway:tool:invoke on postgres-mcp/unknown"
}

# --- grants in policy data (data.sark.grants) ---

grants := {
	"guest": {"everything": ["echo"]},
	"ops": {"everything": ["*"], "other": "not a list"},
	"viewer": {"everything": []},
}

mcp(action, tool, roles) := {
	"action": action,
	"server_name": "everything",
	"tool_name": tool,
	"parameters": {},
	"user": {"id": "u1", "email": "u1@example.com", "roles": roles},
}

decide_granted(inp) := d if {
	d := gateway with input as inp with data.sark.grants as grants
}

test_grant_lists_tools if {
	d := decide_granted(mcp("gateway:tool:invoke", "echo", ["guest"]))
	allowed(d, "Allowed: role guest is granted echo on everything")
	denied_allow(decide_granted(mcp("gateway:tool:invoke", "get-env", ["guest"])))
	denied_allow(decide_granted(mcp("gateway:tool:invoke", "ECHO", ["guest"])))
}

test_grant_star_is_every_tool if {
	allowed(
		decide_granted(mcp("gateway:tool:invoke", "get-env", ["ops"])),
		"Allowed: role ops is granted get-env on everything",
	)
}

test_grant_is_per_server if {
	inp := object.union(mcp("gateway:tool:invoke", "echo", ["guest", "ops"]), {"server_name": "other"})
	denied_allow(decide_granted(inp))
	denied_allow(decide_granted(object.union(inp, {"action": "gateway:server:access"})))
}

test_grant_gives_server_access if {
	every action in ["gateway:server:access", "gateway:resource:read", "gateway:prompt:get"] {
		allowed(
			decide_granted(mcp(action, null, ["viewer"])),
			sprintf("Allowed: role viewer is granted %s on everything", [action]),
		)
		denied_allow(decide_granted(mcp(action, null, ["nobody"])))
	}
}

test_grant_empty_list_grants_no_tool if {
	denied_allow(decide_granted(mcp("gateway:tool:invoke", "echo", ["viewer"])))
}

test_grant_first_role_by_name_in_reason if {
	allowed(
		decide_granted(mcp("gateway:tool:invoke", "echo", ["ops", "guest"])),
		"Allowed: role guest is granted echo on everything",
	)
}

test_grant_ill_shaped_grants_nothing if {
	every g in [{"guest": ["echo"]}, {"guest": {"everything": "echo"}}, {"guest": "*"}, ["guest"], "x"] {
		d := gateway with input as mcp("gateway:tool:invoke", "echo", ["guest"]) with data.sark.grants as g
		d.allow == false
	}
	every tool in [null, 1, ["echo"], {"echo": true}] {
		denied_allow(decide_granted(mcp("gateway:tool:invoke", tool, ["ops"])))
	}
}

test_grant_does_not_lift_deny_rules if {
	inp := request("github-mcp", "close_issue", {}, ["ops"])
	d := gateway with input as inp with data.sark.grants as {"ops": {"github-mcp": ["*"]}}
	d.allow == false
	d.reason == "Only admins can close or delete GitHub issues"
}

test_grant_secrets_still_filtered if {
	inp := object.union(mcp("gateway:tool:invoke", "echo", ["guest"]), {"parameters": {"message": "hi", "api_key": "k"}})
	decide_granted(inp).filtered_parameters == {"message": "hi"}
}

# --- visible tools (gateway:tool:discover) ---

discover(tools, roles) := object.union(mcp("gateway:tool:discover", null, roles), {"parameters": {"tools": tools}})

test_discover_answers_visible_subset_in_order if {
	d := decide_granted(discover(["get-env", "echo", 7, "echo"], ["guest"]))
	allowed(d, "Allowed: u1@example.com may see 2 of the 4 tools listed on everything")
	d.filtered_parameters == {"tools": ["echo", "echo"]}
}

test_discover_nothing_visible_is_denied if {
	d := decide_granted(discover(["get-env"], ["guest", "viewer"]))
	denied_allow(d)
	d.filtered_parameters == {"tools": []}
}

test_discover_admin_and_star_see_all if {
	decide_granted(discover(["a", "b"], ["admin"])).filtered_parameters == {"tools": ["a", "b"]}
	decide_granted(discover(["a", "b"], ["ops"])).filtered_parameters == {"tools": ["a", "b"]}
}

test_discover_covers_built_in_rules if {
	d := decide(object.union(discover(["execute_query", "execute_mutation", "get_repo"], ["analyst"]), {"server_name": "postgres-mcp"}))
	d.filtered_parameters == {"tools": ["execute_query"]}
	e := decide(object.union(discover(["get_repo", "close_issue"], ["developer"]), {"server_name": "github-mcp"}))
	e.filtered_parameters == {"tools": ["get_repo"]}
}

# The consistency rule, both ways, for every role of the dev data and every
# tool of the everything server: a hidden tool is refused on call, a
# visible one (the dev data holds no argument rules there) is allowed.
everything_tools := [
	"echo", "get-annotated-message", "get-env", "get-resource-links",
	"get-resource-reference", "get-structured-content", "get-sum",
	"get-tiny-image", "gzip-file-as-resource", "simulate-research-query",
	"toggle-simulated-logging", "toggle-subscriber-updates",
	"trigger-long-running-operation",
]

test_dev_grants_hidden_means_refused if {
	every role in ["admin", "developer", "analyst", "guest", "nobody"] {
		every tool in everything_tools {
			visible := tool in seen(role)
			decide(mcp("gateway:tool:invoke", tool, [role])).allow == visible
		}
	}
}

seen(role) := {t | some t in decide(discover(everything_tools, [role])).filtered_parameters.tools}

test_dev_grants_differ_by_role if {
	count(seen("admin")) == count(everything_tools)
	not "get-env" in seen("developer")
	not "gzip-file-as-resource" in seen("developer")
	seen("analyst") == {"echo", "get-annotated-message", "get-structured-content", "get-sum", "simulate-research-query"}
	seen("guest") == {"echo", "get-tiny-image"}
	count(seen("nobody")) == 0
}
