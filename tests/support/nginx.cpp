#include "nginx.hpp"

#include <condaguard/sys/process.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace condaguard::test {

namespace {

constexpr const char* kNginx = "/usr/sbin/nginx";
constexpr const char* kOpenssl = "/usr/bin/openssl";

void openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{kOpenssl};
    argv.insert(argv.end(), args.begin(), args.end());
    const process::Outcome o = process::run({.argv = argv, .env = {}, .timeout = std::chrono::seconds(30)});
    if (o.ending != process::Ending::Exited || o.exit_code != 0)
        throw std::runtime_error("openssl " + args.front() + " failed: " + o.err.data);
}

struct TestPki {
    TempDir dir;
    stdfs::path ca_cert = dir / "ca.pem";
    stdfs::path server_cert = dir / "server.pem";
    stdfs::path server_key = dir / "server.key";

    TestPki() {
        const std::string ca_key = (dir / "ca.key").string();
        const std::string csr = (dir / "server.csr").string();
        const std::string ext = (dir / "server.ext").string();
        openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key,
                 "-out", ca_cert.string(), "-days", "2", "-subj", "/CN=condaguard test CA", "-addext",
                 "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
        openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 server_key.string(), "-out", csr, "-subj", "/CN=127.0.0.1"});
        write_file(ext, "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n");
        openssl({"x509", "-req", "-in", csr, "-CA", ca_cert.string(), "-CAkey", ca_key, "-CAcreateserial", "-out",
                 server_cert.string(), "-days", "2", "-extfile", ext});
    }
};

const TestPki& pki() {
    static const TestPki p;
    return p;
}

// A port that was free a moment ago (bind to 0, read it, close).
std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("bind");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

bool accepting(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

bool nginx_available() { return ::access(kNginx, X_OK) == 0; }

bool nginx_required() {
    const char* v = std::getenv("CONDAGUARD_REQUIRE_NGINX");
    return v != nullptr && *v != '\0';
}

const stdfs::path& test_ca_file() { return pki().ca_cert; }

Nginx::Nginx(const stdfs::path& root, const std::string& server_extra) {
    for (int attempt = 0; attempt < 5; ++attempt)
        if (start_once(root, server_extra)) return;
    throw std::runtime_error("nginx did not start: " + read_file(dir_ / "error.log"));
}

bool Nginx::start_once(const stdfs::path& root, const std::string& server_extra) {
    const TestPki& p = pki();
    http_port_ = free_port();
    https_port_ = free_port();
    const std::string d = dir_.path().string();
    for (const char* sub : {"tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"})
        stdfs::create_directories(dir_ / sub);
    const std::string conf =
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid " + d + "/nginx.pid;\n"
        "error_log " + d + "/error.log info;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "  log_format proto '$request_method $request_uri $server_protocol $status';\n"
        "  access_log " + d + "/access.log proto;\n"
        "  client_body_temp_path " + d + "/tmp/body;\n  proxy_temp_path " + d + "/tmp/proxy;\n"
        "  fastcgi_temp_path " + d + "/tmp/fastcgi;\n  uwsgi_temp_path " + d + "/tmp/uwsgi;\n"
        "  scgi_temp_path " + d + "/tmp/scgi;\n"
        "  default_type application/octet-stream;\n"
        "  server { listen 127.0.0.1:" + std::to_string(http_port_) + "; root " + root.string() + "; " + server_extra + " }\n"
        "  server { listen 127.0.0.1:" + std::to_string(https_port_) + " ssl http2; root " + root.string() + "; " + server_extra + "\n"
        "    ssl_certificate " + p.server_cert.string() + ";\n    ssl_certificate_key " + p.server_key.string() + ";\n"
        "  }\n}\n";
    write_file(dir_ / "nginx.conf", conf);
    std::remove((dir_ / "error.log").c_str());

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    const std::string err = d + "/stderr.log";
    posix_spawn_file_actions_addopen(&fa, 1, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    std::vector<std::string> args{kNginx, "-p", d + "/", "-c", d + "/nginx.conf", "-e", d + "/error.log"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    char* envp[] = {nullptr};
    const int rc = ::posix_spawn(&pid_, kNginx, &fa, nullptr, argv.data(), envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("posix_spawn nginx failed");

    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return false;  // exited: most likely a port taken meanwhile
        }
        if (accepting(http_port_) && accepting(https_port_)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop();
    return false;
}

void Nginx::stop() noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 250; ++i) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

Nginx::~Nginx() { stop(); }

std::string Nginx::http_url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(http_port_) + std::string(path);
}
std::string Nginx::https_url(std::string_view path) const {
    return "https://127.0.0.1:" + std::to_string(https_port_) + std::string(path);
}
std::string Nginx::access_log() const { return read_file(dir_ / "access.log"); }

}  // namespace condaguard::test
