// conda-guard verify-channel CHANNEL_DIR: offline check of a signed channel.
#include <condaguard/channel/verify.hpp>

#include "guard.hpp"

namespace condaguard::cli {

namespace {

struct VerifyChannelArgs {
    std::string channel;
    std::string channel_id;
    std::vector<std::string> allowed;
    std::string state_dir;
    bool allow_expired = false;
    bool index_only = false;
    unsigned jobs = 0;
    KeyOptions keys;
};

int run_verify_channel(const VerifyChannelArgs& a, const Reporter& out) {
    check_key_names(a.allowed, "--key");
    if (a.allow_expired) out.warning("--allow-expired: accepting indexes past their expiry (freeze attacks)");
    const Environment env = read_environment({.keys_dir = a.keys.keys_dir, .state_dir = a.state_dir});
    const KeyStore store = a.keys.store(env, out);
    Verifier verifier(store);
    verifier.allow_only(a.allowed);
    StateStore state(env.state_dir);
    ChannelPolicy policy;
    if (!a.channel_id.empty()) policy.channel_id = a.channel_id;
    policy.allow_expired = a.allow_expired;
    policy.index_only = a.index_only;
    policy.now = env.now();
    policy.jobs = a.jobs;
    return out.channel(verify_channel(a.channel, verifier, state, policy));
}

}  // namespace

void add_verify_channel_command(GuardApp& g) {
    auto a = std::make_shared<VerifyChannelArgs>();
    CLI::App* sub = g.add("verify-channel",
                          "Verify a channel folder offline: each signed index, then every package against its record "
                          "and its own signature",
                          [a, &g] { return run_verify_channel(*a, g.out); });
    sub->add_option("CHANNEL_DIR", a->channel, "The channel folder")->required();
    sub->add_option("--channel-id", a->channel_id, "Require info.guard.channel to be ID")->type_name("ID");
    sub->add_option("--key", a->allowed,
                    "Allow only this key (repeatable); a good signature by another key is UNTRUSTED_KEY")
        ->type_name("NAME");
    sub->add_option("--state-dir", a->state_dir,
                    "Where the highest index versions seen are kept (default: $CONDA_GUARD_STATE_DIR, else "
                    "~/.conda/guard)")
        ->type_name("DIR");
    sub->add_flag("--allow-expired", a->allow_expired, "Accept an expired index (prints a warning)");
    sub->add_flag("--index-only", a->index_only, "Authenticate the indexes only; do not read the packages");
    add_jobs_option(*sub, a->jobs);
    a->keys.add_to(*sub);
    add_output_flags(*sub, g.out);
}

}  // namespace condaguard::cli
