#include "registry/registry_admin.h"

#include <rapidjson/document.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

#include "authz/sensitivity.h"
#include "core/admin_session.h"
#include "registry/registry.h"
#include "sark_proto.h"

namespace sark {
namespace {

constexpr int kExitUsage = 2;

void usage(FILE* out) {
  fprintf(out,
          "usage: sarkd [--env-file FILE] registry load FILE\n"
          "       sarkd [--env-file FILE] registry show\n"
          "load replaces the MCP server and tool registry with FILE's (JSON).\n");
}

using rapidjson::Value;

bool isName(const Value* v) {
  return v != nullptr && v->IsString() && v->GetStringLength() >= 1 &&
         v->GetStringLength() <= SARK_PROTO_MAX_NAME;
}

const Value* member(const Value& o, const char* name) {
  auto it = o.FindMember(name);
  return it == o.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

// The checks the tables make too, with messages that say where.
bool checkEntry(const Value& e, const std::string& where, bool tool, std::string& err) {
  if (!e.IsObject()) {
    err = where + ": not an object";
    return false;
  }
  if (!isName(member(e, "name"))) {
    err = where + ": \"name\" must be a string of 1 to 256 bytes";
    return false;
  }
  for (const char* text : {"url", "description", "owner"}) {
    const Value* v = member(e, text);
    if (v != nullptr && !v->IsString()) {
      err = where + ": \"" + text + "\" must be a string";
      return false;
    }
  }
  const Value* s = member(e, "sensitivity_level");
  Sensitivity level;
  if (s != nullptr &&
      (!s->IsString() || !parseSensitivity({s->GetString(), s->GetStringLength()}, level))) {
    err = where + ": \"sensitivity_level\" must be low, medium, high or critical";
    return false;
  }
  if (tool) {
    const Value* p = member(e, "parameters");
    if (p != nullptr && !p->IsObject()) {
      err = where + ": \"parameters\" must be an object (a JSON schema)";
      return false;
    }
    return true;
  }
  const Value* teams = member(e, "teams");
  if (teams != nullptr) {
    if (!teams->IsArray()) {
      err = where + ": \"teams\" must be an array of strings";
      return false;
    }
    for (const Value& t : teams->GetArray()) {
      if (!t.IsString()) {
        err = where + ": \"teams\" must be an array of strings";
        return false;
      }
    }
  }
  const Value* tools = member(e, "tools");
  if (tools != nullptr && !tools->IsArray()) {
    err = where + ": \"tools\" must be an array";
    return false;
  }
  return true;
}

// A member twice in one object: the checks above read the first, PostgreSQL
// (jsonb) keeps the last, so such a file is refused whole, wherever it is.
bool checkUnique(const Value& v, const std::string& where, std::string& err) {
  if (v.IsArray()) {
    size_t i = 0;
    for (const Value& e : v.GetArray()) {
      if (!checkUnique(e, where + "[" + std::to_string(i++) + "]", err)) {
        return false;
      }
    }
    return true;
  }
  if (!v.IsObject()) {
    return true;
  }
  std::set<std::string_view> seen;
  for (const auto& m : v.GetObject()) {
    std::string_view name(m.name.GetString(), m.name.GetStringLength());
    std::string at = where.empty() ? std::string(name) : where + "." + std::string(name);
    if (!seen.insert(name).second) {
      err = (where.empty() ? std::string("the file") : where) + ": member \"" +
            std::string(name) + "\" appears twice";
      return false;
    }
    if (!checkUnique(m.value, at, err)) {
      return false;
    }
  }
  return true;
}

bool checkDocument(const rapidjson::Document& doc, size_t& nservers, size_t& ntools,
                   std::string& err) {
  if (!checkUnique(doc, "", err)) {
    return false;
  }
  const Value* servers = doc.IsObject() ? member(doc, "servers") : nullptr;
  if (servers == nullptr || !servers->IsArray()) {
    err = "the file must be a JSON object with a \"servers\" array";
    return false;
  }
  std::set<std::string> names;
  nservers = ntools = 0;
  for (const Value& s : servers->GetArray()) {
    std::string where = "servers[" + std::to_string(nservers) + "]";
    if (!checkEntry(s, where, false, err)) {
      return false;
    }
    if (!names.emplace(s["name"].GetString()).second) {
      err = where + ": server \"" + s["name"].GetString() + "\" appears twice";
      return false;
    }
    const Value* tools = member(s, "tools");
    const Value none(rapidjson::kArrayType);
    std::set<std::string> tool_names;
    size_t i = 0;
    for (const Value& t : (tools ? *tools : none).GetArray()) {
      std::string tw = where + ".tools[" + std::to_string(i++) + "]";
      if (!checkEntry(t, tw, true, err)) {
        return false;
      }
      if (!tool_names.emplace(t["name"].GetString()).second) {
        err = tw + ": tool \"" + t["name"].GetString() + "\" appears twice";
        return false;
      }
      ntools++;
    }
    nservers++;
  }
  return true;
}

// The file's JSON goes to PostgreSQL once, as a parameter; the tables'
// rows are made from it there.
constexpr const char* kInsertServers = R"sql(
INSERT INTO mcp_servers (name, url, description, sensitivity_level, owner, teams)
SELECT s->>'name', coalesce(s->>'url', ''), coalesce(s->>'description', ''),
       coalesce(s->>'sensitivity_level', 'medium'), s->>'owner',
       coalesce(ARRAY(SELECT jsonb_array_elements_text(
                        CASE WHEN jsonb_typeof(s->'teams') = 'array' THEN s->'teams'
                             ELSE '[]'::jsonb END)), '{}')
  FROM jsonb_array_elements($1::jsonb->'servers') s
)sql";

constexpr const char* kInsertTools = R"sql(
INSERT INTO mcp_tools (server_name, name, description, sensitivity_level, parameters)
SELECT s->>'name', t->>'name', coalesce(t->>'description', ''), t->>'sensitivity_level',
       CASE WHEN jsonb_typeof(t->'parameters') = 'object' THEN t->'parameters'
            ELSE '{}'::jsonb END
  FROM jsonb_array_elements($1::jsonb->'servers') s,
       jsonb_array_elements(CASE WHEN jsonb_typeof(s->'tools') = 'array' THEN s->'tools'
                                 ELSE '[]'::jsonb END) t
)sql";

int load(PGconn* c, const Config& cfg, const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fprintf(stderr, "sarkd: registry load: cannot read %s\n", path);
    return 1;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  std::string text = buf.str();
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
  if (doc.HasParseError()) {
    fprintf(stderr, "sarkd: registry load: %s: not valid JSON (at byte %zu)\n", path,
            doc.GetErrorOffset());
    return 1;
  }
  size_t nservers = 0, ntools = 0;
  std::string err;
  if (!checkDocument(doc, nservers, ntools, err)) {
    fprintf(stderr, "sarkd: registry load: %s: %s\n", path, err.c_str());
    return 1;
  }
  const char* params[] = {text.c_str()};
  bool ok = adminExec(c, "BEGIN", err) && adminExec(c, "DELETE FROM mcp_servers", err);
  for (const char* sql : {kInsertServers, kInsertTools}) {
    if (!ok) {
      break;
    }
    PgResultPtr r(PQexecParams(c, sql, 1, nullptr, params, nullptr, nullptr, 0));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      err = PQresultErrorMessage(r.get());
      ok = false;
    }
  }
  if (!ok || !adminExec(c, "COMMIT", err)) {
    std::string ignored;
    adminExec(c, "ROLLBACK", ignored);
    fprintf(stderr, "sarkd: registry load: %s: nothing changed: %s", path, err.c_str());
    return 1;
  }
  adminAnnounce(cfg, kRegistryChannel, "changed", "REGISTRY_REFRESH_MS");
  printf("loaded %zu servers and %zu tools from %s\n", nservers, ntools, path);
  return 0;
}

int show(PGconn* c) {
  PgResultPtr r(PQexec(c,
                       "SELECT coalesce(jsonb_pretty(jsonb_build_object('servers', coalesce(("
                       "SELECT jsonb_agg(to_jsonb(s) - 'updated_at' || jsonb_build_object("
                       "'tools', coalesce((SELECT jsonb_agg(to_jsonb(t) - 'server_name' - "
                       "'updated_at' ORDER BY t.name COLLATE \"C\") FROM mcp_tools t "
                       "WHERE t.server_name = s.name), '[]'::jsonb)) ORDER BY s.name COLLATE "
                       "\"C\") FROM mcp_servers s), '[]'::jsonb))), '')"));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    fprintf(stderr, "sarkd: registry show: %s", PQresultErrorMessage(r.get()));
    return 1;
  }
  printf("%s\n", PQgetvalue(r.get(), 0, 0));
  return 0;
}

} // namespace

int runRegistryCommand(const Config& cfg, int argc, char** argv) {
  std::string what = argc >= 2 ? argv[1] : "";
  if (!((what == "load" && argc == 3) || (what == "show" && argc == 2))) {
    usage(stderr);
    return kExitUsage;
  }
  PgConnPtr c = adminConnect(cfg, "registry");
  if (!c) {
    return 1;
  }
  return what == "load" ? load(c.get(), cfg, argv[2]) : show(c.get());
}

} // namespace sark
