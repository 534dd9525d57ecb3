#pragma once

// Frames of the cache protocol between sarkd and the module: policy
// revision pushes, invalidation requests, answers, pushes and acks
// (shared/sark_proto.h, types 6-10).

#include <cstdint>
#include <string>
#include <string_view>

#include "sark_proto.h"

namespace sark {

// INVALIDATE_REQ payload; views into the frame.
struct InvalidateRequest {
  std::string_view pattern;
  bool has_pattern{false};
  uint64_t issued_at{0}; // 0 = not given
};

// False only for a malformed payload (a protocol error).
bool decodeInvalidateRequest(const uint8_t* payload, size_t len, InvalidateRequest& req,
                             std::string& err);

struct InvalidateResult {
  uint32_t l2_deleted{0};
  uint32_t hosts{1};
  uint32_t hosts_expected{1};
  uint8_t status{1}; // 0 all confirmed, 1 partial
};

void encodeRevision(std::string& out, std::string_view revision);
void encodeInvalidate(std::string& out, uint32_t id, std::string_view pattern,
                      uint64_t issued_at);
void encodeInvalidateResponse(std::string& out, uint32_t id, const InvalidateResult& r);

} // namespace sark
