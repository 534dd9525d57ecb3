#include "core/json_util.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstring>

namespace sark {
namespace {

// SAX handler that only tracks structure: nesting depth and root type.
class ShapeHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ShapeHandler> {
public:
  bool Default() { return rootCheck(false); }
  bool StartObject() { return rootCheck(true) && enter(); }
  bool EndObject(rapidjson::SizeType) { return leave(); }
  bool StartArray() { return rootCheck(false) && enter(); }
  bool EndArray(rapidjson::SizeType) { return leave(); }

  bool not_object{false};
  bool too_deep{false};

private:
  bool rootCheck(bool is_object) {
    if (!seen_root_) {
      seen_root_ = true;
      if (!is_object) {
        not_object = true;
        return false;
      }
    }
    return true;
  }
  bool enter() {
    if (++depth_ > kMaxJsonDepth) {
      too_deep = true;
      return false;
    }
    return true;
  }
  bool leave() {
    depth_--;
    return true;
  }

  unsigned depth_{0};
  bool seen_root_{false};
};

} // namespace

JsonObjectCheck checkJsonObject(std::string_view text) {
  // RapidJSON treats NUL as end of input; a NUL anywhere is invalid JSON.
  if (text.empty() || memchr(text.data(), '\0', text.size()) != nullptr) {
    return JsonObjectCheck::Invalid;
  }
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::Reader reader;
  ShapeHandler handler;
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  rapidjson::ParseResult ok = reader.Parse<kFlags>(ms, handler);
  if (handler.not_object) {
    return JsonObjectCheck::NotObject;
  }
  if (handler.too_deep) {
    return JsonObjectCheck::TooDeep;
  }
  return ok ? JsonObjectCheck::Ok : JsonObjectCheck::Invalid;
}

} // namespace sark
