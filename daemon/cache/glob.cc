#include "cache/glob.h"

#include "sark_glob.h"

namespace sark {

// One matcher for both layers: the module's L1 uses the same header, so a
// pattern means exactly the same in nginx and in sarkd.
bool globMatch(std::string_view pattern, std::string_view subject) {
  return sark_glob_match(pattern.data(), pattern.size(), subject.data(),
                         subject.size()) != 0;
}

} // namespace sark
