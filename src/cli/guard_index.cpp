// conda-guard index CHANNEL_DIR [--sign KEY --channel-id ID [--expires DURATION] [--sign-packages]]
//                  [--max-unpacked-bytes BYTES] [--max-ratio N] [--max-info-bytes BYTES] [--max-members N]
#include <condaguard/channel/publish.hpp>

#include "guard.hpp"
#include "report.hpp"

#include <fmt/format.h>

#include <charconv>

namespace condaguard::cli {

namespace {

struct IndexArgs {
    std::string channel;
    std::string sign;
    std::string channel_id;
    std::string expires = "30d";
    bool sign_packages = false;
    unsigned jobs = 0;
    ScanLimits limits;
    KeyOptions keys;
};

int run_index(const IndexArgs& a, bool json) {
    IndexOptions opt{.jobs = a.jobs, .signing = std::nullopt, .limits = a.limits};
    std::optional<PrivateKey> key;
    if (!a.sign.empty()) {
        if (auto why = KeyName::problem(a.sign)) throw CommandError(2, "--sign: " + *why);
        const auto lifetime = parse_duration(a.expires);
        if (!lifetime) throw CommandError(2, fmt::format("--expires '{}': expected a duration like 30d, 12h, 15m or 10s",
                                                         a.expires));
        const KeyStore store = a.keys.store(guard_prog);
        key.emplace(with_key_verdict([&] { return store.load_private(KeyName(a.sign)); }));
        opt.signing = IndexSigning{.key_name = KeyName(a.sign),
                                   .key = &*key,
                                   .channel_id = a.channel_id,
                                   .lifetime = *lifetime,
                                   .sign_packages = a.sign_packages,
                                   .signed_at = read_environment().now()};
    }
    const auto reports = index_channel(a.channel, opt);
    int status = 0;
    nlohmann::json subdirs = nlohmann::json::array();
    for (const auto& r : reports) {
        for (const auto& p : r.excluded) {
            fmt::print(stderr, "{}: {}/{}: left out of the index: {}\n", guard_prog, r.subdir, p.file, p.reason);
            status = 1;
        }
        if (r.removed_stale_signature)
            fmt::print(stderr, "{}: {}: removed repodata.json.sig, which signed an older index\n", guard_prog,
                       r.subdir);
        nlohmann::json j{{"subdir", r.subdir},
                         {"repodata", r.repodata.string()},
                         {"packages", r.packages},
                         {"scanned", r.scanned},
                         {"reused", r.reused},
                         {"signed_packages", r.signed_packages},
                         {"excluded", nlohmann::json::array()}};
        for (const auto& p : r.excluded) j["excluded"].push_back({{"file", p.file}, {"reason", p.reason}});
        if (r.guard) j["guard"] = r.guard->to_json();
        subdirs.push_back(std::move(j));
        if (json) continue;
        std::string line = fmt::format("{}: {} packages ({} read, {} unchanged)", r.repodata.string(), r.packages,
                                       r.scanned, r.reused);
        if (r.guard)
            line += fmt::format("; signed version {} for channel '{}' by key {} ({}), expires {}", r.guard->version,
                                r.guard->channel, a.sign, key->public_key().fingerprint(), format_time(r.guard->expires));
        fmt::print("{}\n", line);
        for (const auto& p : r.signed_packages) fmt::print("signed: {}/{}\n", r.subdir, p);
    }
    if (json)
        print_json_object(stdout, {{"version", json_version},
                                   {"command", "index"},
                                   {"status", status == 0 ? "ok" : "fail"},
                                   {"subdirs", std::move(subdirs)}});
    return status;
}

}  // namespace

void add_index_command(GuardApp& g) {
    auto a = std::make_shared<IndexArgs>();
    CLI::App* sub = g.add("index", "Write SUBDIR/repodata.json for every subdir of a channel folder; optionally sign it",
                          [a, &g] { return run_index(*a, g.json); });
    sub->add_option("CHANNEL_DIR", a->channel, "The channel folder (holding noarch/, linux-64/, ...)")->required();
    auto* sign = sub->add_option("--sign", a->sign, "Sign each index with this private key from the keys directory")
                     ->type_name("KEY");
    auto* id = sub->add_option("--channel-id", a->channel_id,
                               "The channel's stable identity written into info.guard (required with --sign)")
                   ->type_name("ID");
    sub->add_option("--expires", a->expires, "How long the signed index is valid: 30d (default), 12h, 15m, 10s")
        ->type_name("DURATION")
        ->needs(sign);
    sub->add_flag("--sign-packages", a->sign_packages, "Also sign every package that has no .sig, in the same pass")
        ->needs(sign);
    sign->needs(id);
    id->needs(sign);
    // Caps on reading an upload, which no signed record vouches for yet.
    const CLI::Validator positive(
        [](const std::string& v) -> std::string {
            std::uint64_t n = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            return ec == std::errc() && end == v.data() + v.size() && n > 0 ? ""
                                                                            : "expected a whole number from 1 to 2^64-1";
        },
        "");
    auto cap = [&](const char* name, std::uint64_t& value, const char* what, const char* type) {
        sub->add_option(name, value, what)->type_name(type)->check(positive)->capture_default_str();
    };
    cap("--max-unpacked-bytes", a->limits.max_unpacked_bytes, "Refuse a package that unpacks to more bytes", "BYTES");
    cap("--max-ratio", a->limits.max_ratio, "Refuse a package that unpacks to more than N times its size", "N");
    cap("--max-info-bytes", a->limits.max_info_bytes, "Refuse a package with a larger info/ member", "BYTES");
    cap("--max-members", a->limits.max_members, "Refuse a package with more members (inner tars included)", "N");
    add_jobs_option(*sub, a->jobs);
    a->keys.add_to(*sub);
    sub->add_flag("--json", g.json, "Print the report as JSON");
}

}  // namespace condaguard::cli
