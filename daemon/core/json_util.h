#pragma once

// RapidJSON pieces shared by the decision path.

#include <rapidjson/encodings.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace sark {

// RapidJSON output stream appending to a std::string.
struct StringOutStream {
  using Ch = char;
  explicit StringOutStream(std::string& s) : s_(s) {}
  void Put(char c) { s_.push_back(c); }
  void Flush() {}
  std::string& s_;
};

// Writer that refuses invalid UTF-8 in strings (String()/Key() return false).
using JsonWriter = rapidjson::Writer<StringOutStream, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                     rapidjson::CrtAllocator, rapidjson::kWriteValidateEncodingFlag>;

// Deepest nesting accepted in a JSON document from a peer.
inline constexpr unsigned kMaxJsonDepth = 512;

enum class JsonObjectCheck { Ok, Invalid, NotObject, TooDeep };

// Checks that `text` is exactly one JSON object (valid UTF-8, no trailing
// bytes, nesting at most kMaxJsonDepth) without building a DOM or
// recursing.
JsonObjectCheck checkJsonObject(std::string_view text);

} // namespace sark
