#include "handles.hpp"

#include <mutex>
#include <stdexcept>

namespace condaguard::curl {

namespace {

class EasyCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "curl"; }
    std::string message(int c) const override { return curl_easy_strerror(static_cast<CURLcode>(c)); }
};

class MultiCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "curl-multi"; }
    std::string message(int c) const override { return curl_multi_strerror(static_cast<CURLMcode>(c)); }
};

class UrlCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "curl-url"; }
    std::string message(int c) const override { return curl_url_strerror(static_cast<CURLUcode>(c)); }
};

}  // namespace

const std::error_category& easy_category() noexcept {
    static const EasyCategory c;
    return c;
}
const std::error_category& multi_category() noexcept {
    static const MultiCategory c;
    return c;
}
const std::error_category& url_category() noexcept {
    static const UrlCategory c;
    return c;
}

void check(CURLcode c, const char* what) {
    if (c != CURLE_OK) throw std::system_error(make_error_code(c), what);
}
void check(CURLMcode c, const char* what) {
    if (c != CURLM_OK) throw std::system_error(make_error_code(c), what);
}
void check(CURLUcode c, const char* what) {
    if (c != CURLUE_OK) throw std::system_error(make_error_code(c), what);
}

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { check(curl_global_init(CURL_GLOBAL_DEFAULT), "curl_global_init"); });
}

Easy::Easy() {
    global_init();
    h_ = curl_easy_init();
    if (h_ == nullptr) throw std::runtime_error("curl_easy_init failed");
}
void Easy::reset() noexcept {
    if (h_ != nullptr) curl_easy_cleanup(std::exchange(h_, nullptr));
}

Multi::Multi() {
    global_init();
    h_ = curl_multi_init();
    if (h_ == nullptr) throw std::runtime_error("curl_multi_init failed");
}
void Multi::reset() noexcept {
    // curl_multi_cleanup's status is ignored: a destructor cannot report it,
    // and every easy handle was removed by its Attachment before this.
    if (h_ != nullptr) (void)curl_multi_cleanup(std::exchange(h_, nullptr));
}

Attachment::Attachment(Multi& multi, Easy& easy) : multi_(multi.get()), easy_(easy.get()) {
    check(curl_multi_add_handle(multi_, easy_), "curl_multi_add_handle");
}
Attachment::~Attachment() {
    if (multi_ != nullptr) (void)curl_multi_remove_handle(multi_, easy_);
}

void Slist::append(const std::string& line) {
    curl_slist* n = curl_slist_append(l_, line.c_str());
    if (n == nullptr) throw std::runtime_error("curl_slist_append failed");
    l_ = n;
}
void Slist::reset() noexcept {
    if (l_ != nullptr) curl_slist_free_all(std::exchange(l_, nullptr));
}

Url::Url() {
    global_init();
    u_ = curl_url();
    if (u_ == nullptr) throw std::runtime_error("curl_url failed");
}
Url::~Url() {
    if (u_ != nullptr) curl_url_cleanup(u_);
}

CURLUcode Url::parse(const std::string& url, unsigned flags) { return curl_url_set(u_, CURLUPART_URL, url.c_str(), flags); }

std::string Url::part(CURLUPart which, unsigned flags) const {
    char* raw = nullptr;
    const CURLUcode c = curl_url_get(u_, which, &raw, flags);
    switch (c) {
    case CURLUE_OK: break;
    case CURLUE_NO_SCHEME:
    case CURLUE_NO_USER:
    case CURLUE_NO_PASSWORD:
    case CURLUE_NO_OPTIONS:
    case CURLUE_NO_HOST:
    case CURLUE_NO_PORT:
    case CURLUE_NO_QUERY:
    case CURLUE_NO_FRAGMENT:
    case CURLUE_NO_ZONEID: return {};
    default: check(c, "curl_url_get");
    }
    std::string out = raw != nullptr ? raw : "";
    curl_free(raw);
    return out;
}

}  // namespace condaguard::curl
