#include "proto/cache_frames.h"

#include "proto/frame_builder.h"

namespace sark {

bool decodeInvalidateRequest(const uint8_t* payload, size_t len, InvalidateRequest& req,
                             std::string& err) {
  size_t off = 0;
  sark_tlv_t t;
  int rc;
  while ((rc = sark_tlv_next(payload, len, &off, &t)) == SARK_PROTO_OK) {
    if (t.tag == SARK_INV_PATTERN) {
      req.pattern = std::string_view(reinterpret_cast<const char*>(t.value), t.len);
      req.has_pattern = true;
    } else if (t.tag == SARK_INV_ISSUED_AT) {
      if (!sark_tlv_u64(&t, &req.issued_at)) {
        err = "INVALIDATE_REQ: ISSUED_AT is not a u64";
        return false;
      }
    }
  }
  if (rc != SARK_PROTO_END) {
    err = std::string("INVALIDATE_REQ payload: ") + sark_proto_strerror(rc);
    return false;
  }
  return true;
}

void encodeRevision(std::string& out, std::string_view revision) {
  FrameBuilder f(out, SARK_MSG_REVISION, 0);
  f.str(SARK_REV_REVISION, revision);
  f.finish();
}

void encodeInvalidate(std::string& out, uint32_t id, std::string_view pattern,
                      uint64_t issued_at) {
  FrameBuilder f(out, SARK_MSG_INVALIDATE, id);
  f.str(SARK_INV_PATTERN, pattern);
  f.u64(SARK_INV_ISSUED_AT, issued_at);
  f.finish();
}

void encodeInvalidateResponse(std::string& out, uint32_t id, const InvalidateResult& r) {
  FrameBuilder f(out, SARK_MSG_INVALIDATE_RESP, id);
  f.u32(SARK_INV_L2_DELETED, r.l2_deleted);
  f.u32(SARK_INV_HOSTS, r.hosts);
  f.u32(SARK_INV_HOSTS_EXPECTED, r.hosts_expected);
  f.u8(SARK_INV_STATUS, r.status);
  f.finish();
}

} // namespace sark
