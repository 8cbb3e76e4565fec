// Move-only owners for libcurl handles (CURL, CURLM, curl_slist, CURLU), and
// libcurl's status codes as std::system_error through two error categories
// (CURLcode: easy and share calls; CURLMcode: multi calls), as MPD does.
#pragma once

#include <curl/curl.h>

#include <string>
#include <system_error>
#include <utility>

namespace condaguard::curl {

const std::error_category& easy_category() noexcept;
const std::error_category& multi_category() noexcept;
const std::error_category& url_category() noexcept;

inline std::error_code make_error_code(CURLcode c) noexcept { return {static_cast<int>(c), easy_category()}; }
inline std::error_code make_error_code(CURLMcode c) noexcept { return {static_cast<int>(c), multi_category()}; }
inline std::error_code make_error_code(CURLUcode c) noexcept { return {static_cast<int>(c), url_category()}; }

// Throws std::system_error("what: curl's text") unless the call succeeded.
void check(CURLcode c, const char* what);
void check(CURLMcode c, const char* what);
void check(CURLUcode c, const char* what);

// curl_global_init once per process (thread-safe: call it before any handle).
void global_init();

class Easy {
public:
    Easy();  // throws std::runtime_error when curl_easy_init fails
    Easy(Easy&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Easy& operator=(Easy&& o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    ~Easy() { reset(); }
    CURL* get() const noexcept { return h_; }

    // curl_easy_setopt, checked; `what` names the option in the message.
    template <class T>
    void set(CURLoption opt, T value, const char* what) {
        check(curl_easy_setopt(h_, opt, value), what);
    }
    void set_str(CURLoption opt, const std::string& value, const char* what) {
        check(curl_easy_setopt(h_, opt, value.c_str()), what);
    }
    template <class T>
    T info(CURLINFO what_info, const char* what) const {
        T out{};
        check(curl_easy_getinfo(h_, what_info, &out), what);
        return out;
    }

private:
    void reset() noexcept;
    CURL* h_ = nullptr;
};

class Multi {
public:
    Multi();
    Multi(Multi&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Multi& operator=(Multi&& o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    ~Multi() { reset(); }
    CURLM* get() const noexcept { return h_; }

    template <class T>
    void set(CURLMoption opt, T value, const char* what) {
        check(curl_multi_setopt(h_, opt, value), what);
    }

private:
    void reset() noexcept;
    CURLM* h_ = nullptr;
};

// An easy handle's membership of a multi handle: curl_multi_add_handle on
// construction, curl_multi_remove_handle on destruction, so that a handle is
// always removed before it (or the multi handle) is cleaned up. Declare it
// after the Easy and the Multi it refers to.
class Attachment {
public:
    Attachment(Multi& multi, Easy& easy);
    Attachment(Attachment&& o) noexcept
        : multi_(std::exchange(o.multi_, nullptr)), easy_(std::exchange(o.easy_, nullptr)) {}
    Attachment& operator=(Attachment&&) = delete;
    ~Attachment();

private:
    CURLM* multi_;
    CURL* easy_;
};

class Slist {
public:
    Slist() = default;
    Slist(Slist&& o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
    Slist& operator=(Slist&& o) noexcept {
        if (this != &o) {
            reset();
            l_ = std::exchange(o.l_, nullptr);
        }
        return *this;
    }
    ~Slist() { reset(); }
    curl_slist* get() const noexcept { return l_; }
    void append(const std::string& line);  // throws std::runtime_error when out of memory

private:
    void reset() noexcept;
    curl_slist* l_ = nullptr;
};

// A parsed URL (curl's URL API), read part by part.
class Url {
public:
    Url();
    Url(Url&& o) noexcept : u_(std::exchange(o.u_, nullptr)) {}
    Url& operator=(Url&&) = delete;
    ~Url();
    CURLU* get() const noexcept { return u_; }

    // curl_url_set(CURLUPART_URL) with `flags`; returns the status unchecked
    // (callers decide whether a bad URL is an error or a refusal).
    CURLUcode parse(const std::string& url, unsigned flags);
    // The part, or an empty string when the URL has none (CURLUE_NO_*);
    // other statuses throw.
    std::string part(CURLUPart which, unsigned flags = 0) const;

private:
    CURLU* u_ = nullptr;
};

}  // namespace condaguard::curl
