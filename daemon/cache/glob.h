#pragma once

// Glob matching with Redis KEYS/SCAN MATCH semantics, so a pattern selects
// the same keys here as in Redis: `*` any run of bytes, `?` one byte,
// `[abc]` / `[a-z]` / `[^...]` one byte of (not of) a set, `\x` the byte x
// literally (also inside a set).  An unclosed `[` ends at the end of the
// pattern, a trailing `\` is a literal backslash, and a reversed range
// `[z-a]` means `[a-z]`, all as in Redis; an empty subject is matched
// only by "" and "*" (as KEYS/SCAN do).  Bytes are compared exactly (no
// case folding).  Linear in practice: `*` keeps a single backtrack point
// instead of recursing.

#include <string_view>

namespace sark {

bool globMatch(std::string_view pattern, std::string_view subject);

} // namespace sark
