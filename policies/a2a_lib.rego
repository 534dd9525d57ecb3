# Intermediate rules of the agent-to-agent policy (package sark.a2a), in
# their own package so that the a2a document holds only its result fields.
package sark.lib.a2a

trust_values := {"low": 1, "medium": 2, "high": 3, "critical": 4}

delegation_limits := {"low": 1, "medium": 2, "high": 3, "critical": 3}

tool_capabilities := {
	"query_database": "database_access",
	"execute_code": "code_execution",
	"send_email": "email_sending",
	"make_http_request": "http_client",
}

# Why the request may be permitted, before deny rules apply.
grants contains "critical" if {
	input.action == "a2a:invoke"
	source_trust == 4
}

grants contains "trust" if {
	input.action == "a2a:invoke"
	target_trust > 0
	source_trust >= target_trust
}

grants contains "research" if {
	input.action == "a2a:invoke"
	"research" in source_caps
	"query" in target_caps
	input.tool_name in {"query_database", "search_database"}
}

grants contains "orchestrator" if {
	input.action == "a2a:invoke"
	"orchestrator" in source_caps
}

grants contains "data_processing" if {
	input.action == "a2a:invoke"
	"data_processing" in source_caps
	"analytics" in target_caps
}

grants contains "delegate" if {
	input.action == "a2a:delegate"
	target_trust > 0
	source_trust > target_trust
}

grants contains "delegate" if {
	input.action == "a2a:delegate"
	source_trust > 0
	source_trust == target_trust
	"delegate" in source_caps
}

source := input.source_agent if {
	is_object(input.source_agent)
} else := {}

target := input.target_agent if {
	is_object(input.target_agent)
} else := {}

# Trust values 1..4, or 0 for a missing or unknown trust level.
source_trust := n if {
	n := trust_values[source.trust_level]
} else := 0

target_trust := n if {
	n := trust_values[target.trust_level]
} else := 0

delegation_limit := n if {
	n := delegation_limits[source.trust_level]
} else := 0

source_caps contains cap if {
	is_array(source.capabilities)
	some cap in source.capabilities
	is_string(cap)
}

target_caps contains cap if {
	is_array(target.capabilities)
	some cap in target.capabilities
	is_string(cap)
}

required_capabilities contains cap if {
	is_string(input.tool_name)
	cap := tool_capabilities[input.tool_name]
}

source_name := agent_name(source)

target_name := agent_name(target)

agent_name(agent) := agent.name if {
	is_string(agent.name)
	agent.name != ""
} else := agent.id if {
	is_string(agent.id)
	agent.id != ""
} else := "unknown"

# context.delegation_depth: absent or null counts as 0; anything but a
# non-negative integer is invalid.
depth_given if {
	is_object(input.context)
	"delegation_depth" in object.keys(input.context)
	input.context.delegation_depth != null
}

depth_valid if {
	is_number(input.context.delegation_depth)
	input.context.delegation_depth >= 0
	input.context.delegation_depth == floor(input.context.delegation_depth)
}

delegation_depth := input.context.delegation_depth if depth_valid

else := 0
