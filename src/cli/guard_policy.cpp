// conda-guard policy [--policy FILE] [--json]: the effective policy, each
// value with where it came from.
#include <condaguard/config/policy.hpp>

#include "guard.hpp"

namespace condaguard::cli {

void add_policy_command(GuardApp& g) {
    auto file = std::make_shared<std::string>();
    CLI::App* sub = g.add("policy", "Print the effective policy and where each value came from", [file, &g] {
        const Environment env = read_environment({});
        const PolicySources sources = file->empty() ? default_policy_sources(env.home)
                                                    : PolicySources{.files = {*file}, .explicit_file = true};
        Policy policy;
        try {
            policy = load_policy(sources);
        } catch (const PolicyError& e) {
            throw CommandError(2, e.what());
        }
        return g.out.policy(policy);
    });
    sub->add_option("--policy", *file,
                    "Read only FILE (default: /etc/conda/guard.yaml, then ~/.conda/guard.yaml)")
        ->type_name("FILE");
    sub->add_flag("--json", g.out.json, "Print as JSON (with \"version\": 1)");
}

}  // namespace condaguard::cli
