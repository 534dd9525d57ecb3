#pragma once

// Which policies and data made an OPA answer: the bundle revisions OPA
// reports with it when asked with `?provenance=true` (docs/design.md,
// "Policy revision").

#include <rapidjson/document.h>

#include <string>

namespace sark {

// The revision in an OPA answer's "provenance": a single bundle's own
// revision when it is short and plain (letters, digits, ".-_:+@/", at most
// 64), else the first 16 hex digits of SHA-256 over every bundle's name and
// revision, sorted by name.  Empty when there is no bundle, or a bundle has
// no revision.
std::string revisionFromProvenance(const rapidjson::Value& answer);

} // namespace sark
