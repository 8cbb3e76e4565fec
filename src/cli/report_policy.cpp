// conda-guard policy: the effective policy as aligned "key  value  source"
// lines, or JSON (conda-guard only; see report.hpp for the rules).
#include <condaguard/config/policy.hpp>

#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>

namespace condaguard::cli {

namespace {

// 30d, 12h, 15m, 10s: the largest unit that divides the duration.
std::string duration_text(Seconds s) {
    const std::int64_t n = s.count();
    for (const auto& [unit, secs] : std::array<std::pair<char, std::int64_t>, 3>{{{'d', 86400}, {'h', 3600}, {'m', 60}}})
        if (n % secs == 0) return fmt::format("{}{}", n / secs, unit);
    return fmt::format("{}s", n);
}

// 1GiB, 512MiB, 64KiB, 1000B: the largest unit that divides the size.
std::string size_text(std::uint64_t b) {
    for (const auto& [unit, shift] : std::array<std::pair<const char*, int>, 3>{{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}}})
        if (b % (std::uint64_t{1} << shift) == 0) return fmt::format("{}{}", b >> shift, unit);
    return fmt::format("{}B", b);
}

std::string keys_text(const AllowedKeys& k) {
    std::string out;
    for (const auto& n : k.names) out += (out.empty() ? "" : ", ") + n;
    for (const auto& f : k.fingerprints) out += (out.empty() ? "sha256:" : ", sha256:") + f;
    return out;
}

template <class T>
nlohmann::json sourced(const T& value, const std::string& source) {
    return {{"value", value}, {"source", source}};
}

}  // namespace

int Reporter::policy(const Policy& p) const {
    if (p.weak_rsa_allowed())
        warning(fmt::format("the policy accepts RSA keys of {} bits or more (the safe minimum is {})",
                            p.min_rsa_bits.value, default_min_rsa_bits));
    if (json) {
        nlohmann::json revoked = nlohmann::json::array();
        for (const auto& r : p.revoked_keys)
            revoked.push_back({{"fingerprint", r.fingerprint}, {"reason", r.reason}, {"date", r.date}, {"source", r.source}});
        nlohmann::json channels = nlohmann::json::array();
        for (const auto& c : p.channels) {
            nlohmann::json keys = nullptr;
            if (c.keys)
                keys = sourced(nlohmann::json{{"names", c.keys->value.names}, {"fingerprints", c.keys->value.fingerprints}},
                               c.keys->source);
            channels.push_back({{"match", c.match},
                                {"source", c.source},
                                {"keys", std::move(keys)},
                                {"index", sourced(to_string(c.index.value), c.index.source)},
                                {"channel_id", c.channel_id ? sourced(c.channel_id->value, c.channel_id->source)
                                                            : nlohmann::json(nullptr)},
                                {"signatures", sourced(to_string(c.signatures.value), c.signatures.source)}});
        }
        auto seconds = [](const std::optional<Sourced<Seconds>>& s) {
            return s ? sourced(s->value.count(), s->source) : sourced(nullptr, default_source);
        };
        print_envelope("policy", 0,
                       {{"policy",
                         {{"min_rsa_bits", sourced(p.min_rsa_bits.value, p.min_rsa_bits.source)},
                          {"revoked_keys", std::move(revoked)},
                          {"max_index_age_seconds", seconds(p.max_index_age)},
                          {"max_index_bytes", sourced(p.max_index_bytes.value, p.max_index_bytes.source)},
                          {"parallel", sourced(p.parallel.value, p.parallel.source)},
                          {"min_age_seconds", seconds(p.min_age)},
                          {"link_scripts", sourced(to_string(p.link_scripts.value), p.link_scripts.source)},
                          {"channels", std::move(channels)}}}});
        return 0;
    }
    struct Row {
        std::string key, value, source;
    };
    auto optional_duration = [](const std::optional<Sourced<Seconds>>& s) {
        return s ? Row{"", duration_text(s->value), s->source} : Row{"", "off", default_source};
    };
    std::vector<Row> rows;
    rows.push_back({"min_rsa_bits", std::to_string(p.min_rsa_bits.value), p.min_rsa_bits.source});
    if (p.revoked_keys.empty()) rows.push_back({"revoked_keys", "none", default_source});
    for (const auto& r : p.revoked_keys)
        rows.push_back({"revoked_keys", fmt::format("{} {} {}", r.fingerprint, r.date, r.reason), r.source});
    Row age = optional_duration(p.max_index_age);
    age.key = "max_index_age";
    rows.push_back(age);
    rows.push_back({"max_index_bytes", size_text(p.max_index_bytes.value), p.max_index_bytes.source});
    rows.push_back({"parallel", std::to_string(p.parallel.value), p.parallel.source});
    Row min_age = optional_duration(p.min_age);
    min_age.key = "min_age";
    rows.push_back(min_age);
    rows.push_back({"link_scripts", std::string(to_string(p.link_scripts.value)), p.link_scripts.source});
    if (p.channels.empty()) rows.push_back({"channels", "none (every channel: any key in the keys directory)", default_source});
    for (const auto& c : p.channels) {
        const std::string k = "channels[" + c.match + "]";
        rows.push_back({k + ".keys", c.keys ? keys_text(c.keys->value) : "any key in the keys directory",
                        c.keys ? c.keys->source : default_source});
        rows.push_back({k + ".index", std::string(to_string(c.index.value)), c.index.source});
        rows.push_back({k + ".channel_id", c.channel_id ? c.channel_id->value : "any",
                        c.channel_id ? c.channel_id->source : default_source});
        rows.push_back({k + ".signatures",
                        c.signatures.value == SignatureRule::None ? "none (unsigned: its packages are UNVERIFIED)"
                                                                  : std::string(to_string(c.signatures.value)),
                        c.signatures.source});
    }
    std::size_t kw = 0, vw = 0;
    for (const Row& r : rows) {
        kw = std::max(kw, text_width(r.key));
        vw = std::max(vw, text_width(r.value));
    }
    for (const Row& r : rows)
        fmt::print("{}{:{}}  {}{:{}}  {}\n", escape_text(r.key), "", kw - text_width(r.key), escape_text(r.value), "",
                   vw - text_width(r.value), escape_text(r.source));
    return 0;
}

}  // namespace condaguard::cli
