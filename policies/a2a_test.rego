package sark.a2a_test

import data.sark.a2a

# Every test evaluates the whole package document, so that a rule yielding
# two values would fail here as an eval_conflict_error.
decide(inp) := d if {
	d := a2a with input as inp
}

agent(name, trust, caps) := {
	"id": concat("", ["id-", name]),
	"name": name,
	"trust_level": trust,
	"capabilities": caps,
	"environment": "dev",
}

call(action, src, tgt, tool, depth) := {
	"action": action,
	"source_agent": src,
	"target_agent": tgt,
	"tool_name": tool,
	"parameters": {},
	"context": {"workflow_id": "w1", "user_id": "u1", "delegation_depth": depth},
}

invoke(src_trust, src_caps, tgt_trust, tgt_caps, tool) := call(
	"a2a:invoke",
	agent("src", src_trust, src_caps),
	agent("tgt", tgt_trust, tgt_caps),
	tool, 0,
)

delegate(src_trust, src_caps, tgt_trust, depth) := call(
	"a2a:delegate",
	agent("src", src_trust, src_caps),
	agent("tgt", tgt_trust, []),
	"run", depth,
)

allowed(d, why, depth) if {
	d.allow == true
	d.reason == why
	d.cache_ttl == 300
	d.max_delegation_depth == depth
	count(d.deny) == 0
}

denied(d) if {
	d.allow == false
	d.cache_ttl == 0
	d.max_delegation_depth == 0
}

denied_by(d, msgs) if {
	denied(d)
	d.deny == msgs
	count(msgs) > 0
	d.reason == concat("; ", sort(msgs))
}

denied_by(d, msgs) if {
	denied(d)
	d.deny == msgs
	count(msgs) == 0
	d.reason == generic_denial
}

generic_denial := "Denied: insufficient trust level or missing capabilities"

trust_reason(src, tgt) := sprintf("Allowed: %s trust agent src can invoke %s trust agent tgt", [src, tgt])

# --- invoke by trust level ---

test_critical_invokes_any if {
	every tgt in ["critical", "high", "medium", "low"] {
		allowed(decide(invoke("critical", [], tgt, [], "t")), "Allowed: critical trust agent src can invoke any agent", 3)
	}
}

test_equal_or_lower_trust_allowed if {
	every pair in [["high", "high"], ["high", "medium"], ["high", "low"], ["medium", "medium"], ["medium", "low"], ["low", "low"]] {
		limit := {"high": 3, "medium": 2, "low": 1}[pair[0]]
		allowed(decide(invoke(pair[0], [], pair[1], [], "t")), trust_reason(pair[0], pair[1]), limit)
	}
}

test_higher_target_denied if {
	every pair in [["high", "critical"], ["medium", "high"], ["medium", "critical"]] {
		d := decide(invoke(pair[0], [], pair[1], [], "t"))
		denied_by(d, set())
		d.reason == generic_denial
	}
}

test_low_to_high_or_critical_denied if {
	every tgt in ["high", "critical"] {
		denied_by(decide(invoke("low", [], tgt, [], "t")), {"Low trust agents cannot invoke high/critical trust agents"})
	}
}

test_low_to_medium_denied_without_message if {
	denied_by(decide(invoke("low", [], "medium", [], "t")), set())
}

# --- invoke by capability ---

test_research_query if {
	every tool in ["search_database", "query_database"] {
		d := decide(invoke("medium", ["research", "database_access"], "high", ["query"], tool))
		allowed(d, sprintf("Allowed: research agent src can use %s on query agent tgt", [tool]), 2)
	}
}

test_research_other_tool_denied if {
	denied(decide(invoke("medium", ["research"], "high", ["query"], "export")))
}

test_research_target_without_query_denied if {
	denied(decide(invoke("medium", ["research"], "high", ["analytics"], "search_database")))
}

test_orchestrator if {
	d := decide(invoke("medium", ["orchestrator"], "critical", [], "t"))
	allowed(d, "Allowed: orchestrator agent src can invoke agent tgt", 2)
}

test_data_processing_to_analytics if {
	d := decide(invoke("medium", ["data_processing"], "high", ["analytics"], "t"))
	allowed(d, "Allowed: data processing agent src can invoke analytics agent tgt", 2)
}

test_data_processing_without_analytics_denied if {
	denied(decide(invoke("medium", ["data_processing"], "high", ["reports"], "t")))
}

test_capability_does_not_lift_low_trust if {
	d := decide(invoke("low", ["orchestrator"], "critical", [], "t"))
	denied_by(d, {"Low trust agents cannot invoke high/critical trust agents"})
}

test_trust_reason_wins_over_capability if {
	allowed(decide(invoke("high", ["orchestrator"], "low", [], "t")), trust_reason("high", "low"), 3)
}

# --- required capabilities ---

test_required_capability_missing if {
	every tool in ["query_database", "execute_code", "send_email", "make_http_request"] {
		denied_by(decide(invoke("critical", [], "low", [], tool)), {"Source agent lacks required capability for this action"})
	}
}

test_required_capability_held if {
	caps := {
		"query_database": "database_access",
		"execute_code": "code_execution",
		"send_email": "email_sending",
		"make_http_request": "http_client",
	}
	every tool, cap in caps {
		d := decide(invoke("high", [cap], "medium", [], tool))
		allowed(d, trust_reason("high", "medium"), 3)
	}
}

test_research_query_database_needs_database_access if {
	d := decide(invoke("medium", ["research"], "high", ["query"], "query_database"))
	denied_by(d, {"Source agent lacks required capability for this action"})
}

# --- delegate ---

test_delegate_to_lower_trust if {
	d := decide(delegate("high", [], "medium", 0))
	allowed(d, "Allowed: high trust agent src can delegate to medium trust agent tgt", 3)
}

test_delegate_to_equal_trust_needs_capability if {
	allowed(
		decide(delegate("medium", ["delegate"], "medium", 0)),
		"Allowed: medium trust agent src can delegate to medium trust agent tgt", 2,
	)
	d := decide(delegate("medium", [], "medium", 0))
	denied_by(d, set())
	d.reason == generic_denial
}

test_delegate_to_higher_trust_denied if {
	denied(decide(delegate("medium", ["delegate"], "high", 0)))
}

test_delegate_ignores_invoke_capabilities if {
	denied(decide(delegate("medium", ["orchestrator"], "critical", 0)))
}

test_delegation_depth_limits if {
	every limit in [["critical", 3], ["high", 3], ["medium", 2]] {
		allowed(
			decide(delegate(limit[0], [], "low", limit[1] - 1)),
			sprintf("Allowed: %s trust agent src can delegate to low trust agent tgt", [limit[0]]),
			limit[1],
		)
		denied_by(decide(delegate(limit[0], [], "low", limit[1])), {"Max delegation depth exceeded"})
	}
	allowed(decide(delegate("low", ["delegate"], "low", 0)), "Allowed: low trust agent src can delegate to low trust agent tgt", 1)
	denied_by(decide(delegate("low", ["delegate"], "low", 1)), {"Max delegation depth exceeded"})
}

test_delegation_depth_missing_or_null if {
	inp := delegate("high", [], "low", 0)
	allowed(decide(object.union(inp, {"context": {"delegation_depth": null}})), "Allowed: high trust agent src can delegate to low trust agent tgt", 3)
	allowed(decide(object.remove(inp, {"context"})), "Allowed: high trust agent src can delegate to low trust agent tgt", 3)
}

test_delegation_depth_invalid if {
	every depth in ["1", -1, 1.5, true, [1], {"d": 1}] {
		denied_by(decide(delegate("high", [], "low", depth)), {"Invalid delegation depth"})
	}
}

test_invoke_ignores_depth_limit if {
	allowed(decide(call("a2a:invoke", agent("s", "low", []), agent("t", "low", []), "t", 9)), "Allowed: low trust agent s can invoke low trust agent t", 1)
}

# --- unknown values, missing fields, wrong types ---

test_unknown_action_denied if {
	every action in ["a2a:other", "gateway:tool:invoke", 1, null] {
		d := decide(object.union(invoke("critical", [], "low", [], "t"), {"action": action}))
		denied_by(d, set())
		d.reason == generic_denial
	}
}

test_unknown_source_trust if {
	every trust in ["trusted", "CRITICAL", 4, null, ["high"]] {
		d := decide(invoke(trust, ["orchestrator"], "low", [], "t"))
		denied_by(d, {"Source agent has no valid trust level"})
	}
}

test_unknown_target_trust if {
	d := decide(invoke("critical", [], "untrusted", [], "t"))
	denied_by(d, {"Target agent has no valid trust level"})
}

test_empty_input if {
	every inp in [{}, [], "x", null] {
		denied_by(decide(inp), {"Source agent has no valid trust level", "Target agent has no valid trust level"})
	}
}

test_agents_not_objects if {
	inp := object.union(invoke("high", [], "low", [], "t"), {"source_agent": "src", "target_agent": ["tgt"]})
	denied_by(decide(inp), {"Source agent has no valid trust level", "Target agent has no valid trust level"})
}

test_capabilities_wrong_types if {
	every caps in ["orchestrator", {"c": "orchestrator"}, [1, null], null] {
		denied(decide(invoke("medium", caps, "critical", [], "t")))
	}
}

test_missing_names_fall_back if {
	src := object.union(agent("s", "high", []), {"name": ""})
	tgt := object.remove(agent("t", "low", []), {"name", "id"})
	d := decide(call("a2a:invoke", src, tgt, "t", 0))
	allowed(d, "Allowed: high trust agent id-s can invoke low trust agent unknown", 3)
}

test_tool_name_wrong_type if {
	allowed(decide(invoke("high", [], "low", [], {"name": "query_database"})), trust_reason("high", "low"), 3)
	denied(decide(invoke("medium", ["research"], "high", ["query"], ["search_database"])))
}

test_delegate_unknown_source_trust if {
	d := decide(delegate("trusted", ["delegate"], "low", 0))
	denied_by(d, {"Max delegation depth exceeded", "Source agent has no valid trust level"})
}
