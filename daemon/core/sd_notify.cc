#include "core/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "core/handles.h"

namespace sark {

bool sdNotify(const char* state) {
  const char* path = getenv("NOTIFY_SOCKET");
  if (path == nullptr || (path[0] != '/' && path[0] != '@')) {
    return false;
  }
  size_t len = strlen(path);
  struct sockaddr_un addr;
  if (len >= sizeof(addr.sun_path)) {
    return false;
  }
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path, len);
  if (path[0] == '@') {
    addr.sun_path[0] = '\0'; // the abstract namespace
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return false;
  }
  socklen_t alen = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + len);
  ssize_t n = sendto(fd.get(), state, strlen(state), MSG_NOSIGNAL,
                     reinterpret_cast<const struct sockaddr*>(&addr), alen);
  return n == static_cast<ssize_t>(strlen(state));
}

} // namespace sark
