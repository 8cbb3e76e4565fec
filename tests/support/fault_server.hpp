// A small HTTP/1.1 server for the fetch tests, on 127.0.0.1 and an ephemeral
// port, run by one thread with poll(2): each path answers as its Route says,
// faults included (resets, truncated bodies, wrong Content-Length, slow drip,
// endless bodies, redirects, 5xx before success, ETag/304). Every request is
// logged so tests can assert the headers that were (not) sent. Bounded: at
// most 64 connections, 64 KiB of request headers each.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace condaguard::test {

enum class Fault {
    None,
    ResetMidBody,   // headers and half the body, then a TCP reset
    Truncate,       // Content-Length of the whole body, half of it sent, then close
    WrongLength,    // Content-Length: declared_length, the whole body sent, then close
    SlowDrip,       // the body one byte every drip_interval
    Endless,        // no Content-Length, body bytes until the client goes away
    Stall,          // headers with Content-Length, then nothing (the connection stays open)
    NoLength,       // no Content-Length: the body, then close
};

struct Route {
    int status = 200;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
    // The first `fail_first` requests get `fail_status` (and an empty body).
    unsigned fail_first = 0;
    int fail_status = 503;
    // The fault applies to the first `fault_times` requests (0: all of them).
    Fault fault = Fault::None;
    unsigned fault_times = 0;
    std::uint64_t declared_length = 0;
    std::chrono::milliseconds drip_interval{100};
    // With status 3xx: sent as Location.
    std::string location;
    // Sent as ETag / Last-Modified; a request whose If-None-Match equals
    // `etag` (or If-Modified-Since equals `last_modified`) gets 304.
    std::string etag, last_modified;
};

struct LoggedRequest {
    std::string method, target;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    // The value of the header `name` (lower case), or "" when absent.
    std::string header(std::string_view name) const;
    bool has_header(std::string_view name) const;
};

class FaultServer {
public:
    FaultServer();  // listening and serving when it returns
    ~FaultServer();
    FaultServer(const FaultServer&) = delete;
    FaultServer& operator=(const FaultServer&) = delete;

    void route(const std::string& path, Route r);
    std::uint16_t port() const noexcept { return port_; }
    std::string origin() const;  // http://127.0.0.1:PORT
    std::string url(std::string_view path) const { return origin() + std::string(path); }
    std::vector<LoggedRequest> requests() const;
    std::size_t hits(std::string_view path) const;
    // TCP connections accepted so far.
    std::size_t connections() const;

private:
    struct Conn;
    void serve();
    void respond(Conn& c, const LoggedRequest& req);

    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};
    std::uint16_t port_ = 0;
    mutable std::mutex mu_;
    std::map<std::string, Route> routes_;
    std::map<std::string, unsigned> served_;
    std::vector<LoggedRequest> log_;
    std::size_t accepted_ = 0;
    std::thread thread_;
};

// A listening socket that never accepts, its queue filled: a connection to
// it never completes, so a client's connect timeout is what ends it.
class StalledListener {
public:
    StalledListener();
    ~StalledListener();
    StalledListener(const StalledListener&) = delete;
    StalledListener& operator=(const StalledListener&) = delete;
    std::string url(std::string_view path) const;

private:
    int fd_ = -1;
    std::vector<int> fillers_;
    std::uint16_t port_ = 0;
};

}  // namespace condaguard::test
