// conda-guard index CHANNEL_DIR [--sign KEY --channel-id ID [--expires DURATION] [--sign-packages]]
//                  [--max-unpacked-bytes BYTES] [--max-ratio N] [--max-info-bytes BYTES] [--max-members N]
#include <condaguard/channel/publish.hpp>

#include "guard.hpp"

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

int run_index(const IndexArgs& a, const Reporter& out) {
    const Environment env = read_environment({.keys_dir = a.keys.keys_dir, .state_dir = {}});
    IndexOptions opt{.jobs = a.jobs, .signing = std::nullopt, .limits = a.limits};
    std::optional<PrivateKey> key;
    std::optional<IndexSigner> signer;
    if (!a.sign.empty()) {
        if (auto why = KeyName::problem(a.sign)) throw CommandError(2, "--sign: " + *why);
        const auto lifetime = parse_duration(a.expires);
        if (!lifetime) throw CommandError(2, fmt::format("--expires '{}': expected a duration like 30d, 12h, 15m or 10s",
                                                         a.expires));
        const KeyStore store = a.keys.store(env, out);
        key.emplace(with_key_verdict([&] { return store.load_private(KeyName(a.sign)); }));
        signer = IndexSigner{.key = a.sign, .fingerprint = key->public_key().fingerprint()};
        opt.signing = IndexSigning{.key_name = KeyName(a.sign),
                                   .key = &*key,
                                   .channel_id = a.channel_id,
                                   .lifetime = *lifetime,
                                   .sign_packages = a.sign_packages,
                                   .signed_at = env.now()};
    }
    return out.index(index_channel(a.channel, opt), signer);
}

}  // namespace

void add_index_command(GuardApp& g) {
    auto a = std::make_shared<IndexArgs>();
    CLI::App* sub = g.add("index", "Write SUBDIR/repodata.json for every subdir of a channel folder; optionally sign it",
                          [a, &g] { return run_index(*a, g.out); });
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
    add_output_flags(*sub, g.out);
}

}  // namespace condaguard::cli
