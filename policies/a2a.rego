# Agent-to-agent authorization policy.
#
# Queried as the package document, POST /v1/data/sark/a2a, with input:
#   action        "a2a:invoke" | "a2a:delegate"
#   source_agent  {id, name, trust_level, capabilities[], environment}
#   target_agent  {id, name, trust_level, capabilities[]}
#   tool_name, parameters
#   context       {workflow_id, user_id, delegation_depth}
# Trust levels, lowest to highest: low, medium, high, critical.
#
# The document holds exactly these fields:
#   allow                 bool, default false
#   reason                string, always exactly one value
#   cache_ttl             300 on allow, 0 on deny
#   max_delegation_depth  by source trust on allow (critical/high 3,
#                         medium 2, low 1), 0 on deny
#   deny                  set of messages; any message overrides an allow
#
# Compared with the rules of the Python service, deny messages now override
# grants, every rule yields at most one value, an unknown trust level is a
# denial, the delegation depth limit follows the source's trust level, and
# rules that read fields absent from this input (workflow and owner matches,
# request counts) or that could never fire (business hours) are left out.
# Intermediate rules live in sark.lib.a2a (a2a_lib.rego).
package sark.a2a

import data.sark.lib.a2a as lib

default allow := false

allow if {
	count(lib.grants) > 0
	count(deny) == 0
}

reason := sprintf(
	"Allowed: critical trust agent %s can invoke any agent",
	[lib.source_name],
) if {
	allow
	"critical" in lib.grants
} else := sprintf(
	"Allowed: %s trust agent %s can invoke %s trust agent %s",
	[lib.source.trust_level, lib.source_name, lib.target.trust_level, lib.target_name],
) if {
	allow
	"trust" in lib.grants
} else := sprintf(
	"Allowed: research agent %s can use %s on query agent %s",
	[lib.source_name, input.tool_name, lib.target_name],
) if {
	allow
	"research" in lib.grants
} else := sprintf(
	"Allowed: orchestrator agent %s can invoke agent %s",
	[lib.source_name, lib.target_name],
) if {
	allow
	"orchestrator" in lib.grants
} else := sprintf(
	"Allowed: data processing agent %s can invoke analytics agent %s",
	[lib.source_name, lib.target_name],
) if {
	allow
	"data_processing" in lib.grants
} else := sprintf(
	"Allowed: %s trust agent %s can delegate to %s trust agent %s",
	[lib.source.trust_level, lib.source_name, lib.target.trust_level, lib.target_name],
) if {
	allow
	"delegate" in lib.grants
} else := concat("; ", sort(deny)) if {
	count(deny) > 0
} else := "Denied: insufficient trust level or missing capabilities"

cache_ttl := 300 if allow

else := 0

max_delegation_depth := lib.delegation_limit if allow

else := 0

deny contains "Source agent has no valid trust level" if lib.source_trust == 0

deny contains "Target agent has no valid trust level" if lib.target_trust == 0

deny contains "Low trust agents cannot invoke high/critical trust agents" if {
	lib.source_trust == 1
	lib.target_trust >= 3
}

deny contains "Max delegation depth exceeded" if {
	input.action == "a2a:delegate"
	lib.delegation_depth >= lib.delegation_limit
}

deny contains "Invalid delegation depth" if {
	lib.depth_given
	not lib.depth_valid
}

deny contains "Source agent lacks required capability for this action" if {
	input.action == "a2a:invoke"
	some needed in lib.required_capabilities
	not needed in lib.source_caps
}
