#pragma once

// Appends one protocol frame to a byte string: header first (length
// patched by finish()), then TLV fields via the shared sark_tlv_put*.

#include <cstdint>
#include <string>
#include <string_view>

#include "sark_proto.h"

namespace sark {

class FrameBuilder {
public:
  FrameBuilder(std::string& out, uint8_t type, uint32_t id)
      : out_(out), start_(out.size()), type_(type), id_(id) {
    out_.resize(start_ + SARK_PROTO_HDR_LEN);
  }

  void str(uint16_t tag, std::string_view value) { put(tag, value.data(), value.size()); }

  void u8(uint16_t tag, uint8_t v) { put(tag, &v, 1); }

  void u32(uint16_t tag, uint32_t v) {
    uint8_t b[4];
    sark_put_u32(b, v);
    put(tag, b, sizeof(b));
  }

  void u64(uint16_t tag, uint64_t v) {
    uint8_t b[8];
    sark_put_u64(b, v);
    put(tag, b, sizeof(b));
  }

  // Writes the header; returns the payload length.
  size_t finish() {
    sark_frame_hdr_t h{};
    h.type = type_;
    h.id = id_;
    size_t len = out_.size() - start_ - SARK_PROTO_HDR_LEN;
    h.length = static_cast<uint32_t>(len);
    sark_frame_hdr_encode(reinterpret_cast<uint8_t*>(out_.data()) + start_, &h);
    return len;
  }

private:
  void put(uint16_t tag, const void* value, size_t len) {
    size_t before = out_.size();
    size_t off = before;
    out_.resize(before + sark_tlv_size(len));
    if (sark_tlv_put(reinterpret_cast<uint8_t*>(out_.data()), out_.size(), &off, tag, value,
                     len) != SARK_PROTO_OK) {
      out_.resize(before); // callers bound their values; never reached in practice
    }
  }

  std::string& out_;
  size_t start_;
  uint8_t type_;
  uint32_t id_;
};

} // namespace sark
