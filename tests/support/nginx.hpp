// Debian's nginx (/usr/sbin/nginx), started by a test on 127.0.0.1: a
// directory served over HTTP and over HTTPS + HTTP/2 with a certificate for
// 127.0.0.1 signed by a CA the tests generate (the openssl command). Runs as
// the current user in the foreground (daemon off, master_process off), every
// path (pid, logs, temp files) inside its own TempDir; stopped and reaped by
// the destructor.
#pragma once

#include "support.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace condaguard::test {

// /usr/sbin/nginx is there and executable.
bool nginx_available();
// CONDAGUARD_REQUIRE_NGINX is set (CI installs nginx): its absence fails.
bool nginx_required();

// In a test body: skip when nginx is absent and not required, fail when it
// is absent and required.
#define CONDAGUARD_NGINX_OR_SKIP()                                                              \
    do {                                                                                        \
        if (!::condaguard::test::nginx_available()) {                                           \
            if (::condaguard::test::nginx_required()) FAIL() << "CONDAGUARD_REQUIRE_NGINX is set but /usr/sbin/nginx is absent"; \
            GTEST_SKIP() << "/usr/sbin/nginx is absent";                                        \
        }                                                                                       \
    } while (0)

// The test CA (made once per process): its certificate in PEM.
const stdfs::path& test_ca_file();

class Nginx {
public:
    // Serves `root`; `server_extra` is added to both server blocks (e.g.
    // "location = /r { return 302 http://...; }"). Throws
    // std::runtime_error when nginx does not come up.
    explicit Nginx(const stdfs::path& root, const std::string& server_extra = {});
    ~Nginx();
    Nginx(const Nginx&) = delete;
    Nginx& operator=(const Nginx&) = delete;

    std::string http_url(std::string_view path) const;   // http://127.0.0.1:PORT/path
    std::string https_url(std::string_view path) const;  // https://127.0.0.1:PORT/path
    // One line per request: "METHOD URI PROTOCOL STATUS" (GET /f0 HTTP/2.0 200).
    std::string access_log() const;

private:
    bool start_once(const stdfs::path& root, const std::string& server_extra);
    void stop() noexcept;

    TempDir dir_;
    pid_t pid_ = -1;
    std::uint16_t http_port_ = 0, https_port_ = 0;
};

}  // namespace condaguard::test
