#include "handles.hpp"

namespace condaguard::ossl {

std::string drain_errors(const std::string& what) {
    std::string out = what;
    char buf[256];
    bool first = true;
    while (unsigned long e = ERR_get_error()) {
        ERR_error_string_n(e, buf, sizeof buf);
        out += first ? ": " : "; ";
        out += buf;
        first = false;
    }
    return out;
}

void fail(const std::string& what) { throw std::runtime_error(drain_errors(what)); }

const EVP_MD* sha256() {
    static const Md md{check_ptr(EVP_MD_fetch(nullptr, "SHA256", nullptr), "EVP_MD_fetch(SHA256)")};
    return md.get();
}

}  // namespace condaguard::ossl
