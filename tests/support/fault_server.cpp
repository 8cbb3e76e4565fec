#include "fault_server.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace condaguard::test {

namespace {

constexpr std::size_t kMaxConnections = 64;
constexpr std::size_t kMaxRequestHead = 64 * 1024;
constexpr std::size_t kEndlessChunk = 64 * 1024;

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const char* what) { throw std::runtime_error(std::string("fault server: ") + what); }

int listen_socket(int backlog, std::uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) fail("socket");
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, backlog) != 0) {
        ::close(fd);
        fail("bind/listen");
    }
    socklen_t len = sizeof a;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        fail("getsockname");
    }
    port = ntohs(a.sin_port);
    return fd;
}

std::string lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

const char* status_text(int status) {
    switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 404: return "Not Found";
    case 410: return "Gone";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

}  // namespace

std::string LoggedRequest::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (k == name) return v;
    return {};
}
bool LoggedRequest::has_header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (k == name) return true;
    return false;
}

struct FaultServer::Conn {
    int fd = -1;
    std::string in;
    std::string out;
    std::size_t out_off = 0;
    bool close_after = false;  // close once `out` is sent
    bool reset_after = false;  // reset (RST) once `out` is sent
    bool endless = false;      // refill `out` forever
    bool stalled = false;      // send nothing more, keep the connection open
    std::string drip;          // bytes still to drip, one per interval
    std::chrono::milliseconds drip_interval{0};
    Clock::time_point next_drip{};
};

FaultServer::FaultServer() {
    listen_fd_ = listen_socket(64, port_);
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
        ::close(listen_fd_);
        fail("pipe2");
    }
    thread_ = std::thread([this] { serve(); });
}

FaultServer::~FaultServer() {
    (void)!::write(wake_[1], "x", 1);
    thread_.join();
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
}

void FaultServer::route(const std::string& path, Route r) {
    std::lock_guard lock(mu_);
    routes_[path] = std::move(r);
}

std::string FaultServer::origin() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::vector<LoggedRequest> FaultServer::requests() const {
    std::lock_guard lock(mu_);
    return log_;
}

std::size_t FaultServer::hits(std::string_view path) const {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& r : log_) n += r.target == path ? 1 : 0;
    return n;
}

std::size_t FaultServer::connections() const {
    std::lock_guard lock(mu_);
    return accepted_;
}

void FaultServer::respond(Conn& c, const LoggedRequest& req) {
    Route r;
    unsigned nth = 0;
    bool known = false;
    {
        std::lock_guard lock(mu_);
        log_.push_back(req);
        if (auto it = routes_.find(req.target); it != routes_.end()) {
            r = it->second;
            known = true;
            nth = served_[req.target]++;
        }
    }
    std::string head;
    auto status_line = [&](int status) {
        head = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
    };
    if (!known) {
        status_line(404);
        c.out += head + "Content-Length: 0\r\n\r\n";
        return;
    }
    if (nth < r.fail_first) {
        status_line(r.fail_status);
        c.out += head + "Content-Length: 0\r\n\r\n";
        return;
    }
    const bool not_modified = (!r.etag.empty() && req.header("if-none-match") == r.etag) ||
                              (!r.last_modified.empty() && req.header("if-modified-since") == r.last_modified);
    status_line(not_modified ? 304 : r.status);
    for (const auto& [k, v] : r.headers) head += k + ": " + v + "\r\n";
    if (!r.location.empty()) head += "Location: " + r.location + "\r\n";
    if (!r.etag.empty()) head += "ETag: " + r.etag + "\r\n";
    if (!r.last_modified.empty()) head += "Last-Modified: " + r.last_modified + "\r\n";
    if (not_modified) {
        c.out += head + "\r\n";
        return;
    }
    const Fault fault = (r.fault_times == 0 || nth - r.fail_first < r.fault_times) ? r.fault : Fault::None;
    const std::string& body = r.body;
    switch (fault) {
    case Fault::None:
        c.out += head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        break;
    case Fault::ResetMidBody:
        c.out += head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, body.size() / 2);
        c.reset_after = true;
        break;
    case Fault::Truncate:
        c.out += head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, body.size() / 2);
        c.close_after = true;
        break;
    case Fault::WrongLength:
        c.out += head + "Content-Length: " + std::to_string(r.declared_length) + "\r\n\r\n" + body;
        c.close_after = true;
        break;
    case Fault::SlowDrip:
        c.out += head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
        c.drip = body;
        c.drip_interval = r.drip_interval;
        c.next_drip = Clock::now() + r.drip_interval;
        break;
    case Fault::Endless:
        c.out += head + "Connection: close\r\n\r\n";
        c.endless = true;
        break;
    case Fault::NoLength:
        c.out += head + "Connection: close\r\n\r\n" + body;
        c.close_after = true;
        break;
    case Fault::Stall:
        c.out += head + "Content-Length: " + std::to_string(body.size() + 1) + "\r\n\r\n";
        c.stalled = true;
        break;
    }
}

void FaultServer::serve() {
    std::vector<std::unique_ptr<Conn>> conns;
    const std::string endless_chunk(kEndlessChunk, 'x');
    auto drop = [&](std::size_t i, bool reset) {
        if (reset) {
            const linger l{.l_onoff = 1, .l_linger = 0};
            ::setsockopt(conns[i]->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        ::close(conns[i]->fd);
        conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(i));
    };
    for (;;) {
        std::vector<pollfd> fds;
        fds.push_back({.fd = wake_[0], .events = POLLIN, .revents = 0});
        fds.push_back({.fd = listen_fd_, .events = POLLIN, .revents = 0});
        int timeout = 200;
        const auto now = Clock::now();
        for (const auto& c : conns) {
            short ev = POLLIN;
            if (c->out_off < c->out.size() || c->endless) ev |= POLLOUT;
            if (!c->drip.empty() && c->out_off == c->out.size()) {
                const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(c->next_drip - now).count();
                timeout = std::min<int>(timeout, static_cast<int>(std::max<long long>(wait, 0)));
            }
            fds.push_back({.fd = c->fd, .events = ev, .revents = 0});
        }
        if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) return;
        if (fds[0].revents != 0) break;
        if ((fds[1].revents & POLLIN) != 0 && conns.size() < kMaxConnections) {
            const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                conns.push_back(std::make_unique<Conn>(Conn{.fd = fd}));
                std::lock_guard lock(mu_);
                ++accepted_;
            }
        }
        // Walk backwards so a dropped connection does not shift the rest;
        // fds[i + 2] is conns[i] for the connections present before accept.
        for (std::size_t i = fds.size() - 2; i-- > 0;) {
            Conn& c = *conns[i];
            const short rev = fds[i + 2].revents;
            bool gone = false;
            if ((rev & (POLLIN | POLLHUP | POLLERR)) != 0) {
                char buf[8192];
                const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
                if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) gone = true;
                if (n > 0) c.in.append(buf, static_cast<std::size_t>(n));
                if (c.in.size() > kMaxRequestHead) gone = true;
            }
            if (gone) {
                drop(i, false);
                continue;
            }
            // Requests, one at a time: the next only once the last is answered.
            while (c.out_off == c.out.size() && c.drip.empty() && !c.endless && !c.stalled && !c.close_after &&
                   !c.reset_after) {
                const std::size_t end = c.in.find("\r\n\r\n");
                if (end == std::string::npos) break;
                LoggedRequest req;
                const std::string head = c.in.substr(0, end);
                c.in.erase(0, end + 4);
                std::size_t pos = head.find("\r\n");
                const std::string line = head.substr(0, pos);
                const std::size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
                req.method = line.substr(0, sp1);
                if (sp1 != std::string::npos && sp2 > sp1) req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
                while (pos != std::string::npos) {
                    const std::size_t next = head.find("\r\n", pos + 2);
                    const std::string h = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
                    if (const std::size_t colon = h.find(':'); colon != std::string::npos)
                        req.headers.emplace_back(lower(h.substr(0, colon)), std::string(trim(std::string_view(h).substr(colon + 1))));
                    pos = next;
                }
                c.out.erase(0, c.out_off);
                c.out_off = 0;
                respond(c, req);
            }
            if (c.out_off == c.out.size() && !c.drip.empty() && Clock::now() >= c.next_drip) {
                c.out += c.drip.front();
                c.drip.erase(0, 1);
                c.next_drip = Clock::now() + c.drip_interval;
            }
            if (c.endless && c.out.size() - c.out_off < kEndlessChunk) {
                c.out.erase(0, c.out_off);
                c.out_off = 0;
                c.out += endless_chunk;
            }
            if (c.out_off < c.out.size()) {
                const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                    drop(i, false);
                    continue;
                }
                if (n > 0) c.out_off += static_cast<std::size_t>(n);
            }
            if (c.out_off == c.out.size() && (c.close_after || c.reset_after)) drop(i, c.reset_after);
        }
    }
    for (std::size_t i = conns.size(); i-- > 0;) drop(i, false);
}

StalledListener::StalledListener() {
    fd_ = listen_socket(0, port_);
    // Fill the accept queue (backlog 0 holds one) and the SYN queue beyond it.
    for (int i = 0; i < 4; ++i) {
        const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c < 0) fail("socket");
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port_);
        (void)::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
        fillers_.push_back(c);
    }
    ::usleep(50 * 1000);
}

StalledListener::~StalledListener() {
    for (int c : fillers_) ::close(c);
    ::close(fd_);
}

std::string StalledListener::url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

}  // namespace condaguard::test
