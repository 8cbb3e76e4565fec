// Move-only owner of a locale_t made current for the calling thread only.
#pragma once

#include <clocale>
#include <locale.h>
#include <utility>

namespace condaguard::libc {

// Makes `name` (e.g. "C.UTF-8") the calling thread's LC_CTYPE locale for the
// owner's lifetime, and restores the previous one after. When the system has
// no such locale nothing changes (active() says so).
class ThreadCtype {
public:
    explicit ThreadCtype(const char* name) : loc_(::newlocale(LC_CTYPE_MASK, name, static_cast<locale_t>(nullptr))) {
        if (loc_ != nullptr) previous_ = ::uselocale(loc_);
    }
    ~ThreadCtype() {
        if (loc_ == nullptr) return;
        ::uselocale(previous_);
        ::freelocale(loc_);
    }
    ThreadCtype(const ThreadCtype&) = delete;
    ThreadCtype& operator=(const ThreadCtype&) = delete;
    bool active() const noexcept { return loc_ != nullptr; }

private:
    locale_t loc_ = nullptr;
    locale_t previous_ = nullptr;
};

}  // namespace condaguard::libc
