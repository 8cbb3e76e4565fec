// conda-guard verify FILE...: the offline tarball check (as conda-sign --verify).
#include <condaguard/trust/verifier.hpp>

#include "guard.hpp"

namespace condaguard::cli {

namespace {

struct VerifyArgs {
    std::vector<std::string> files;
    std::vector<std::string> allowed;
    unsigned jobs = 0;
    KeyOptions keys;
};

int run_verify(const VerifyArgs& a, const Reporter& out) {
    check_key_names(a.allowed, "--key");
    const Environment env = read_environment({.keys_dir = a.keys.keys_dir, .state_dir = {}});
    const KeyStore store = a.keys.store(env, out);
    Verifier verifier(store);
    verifier.allow_only(a.allowed);
    return out.results("verify", verifier.verify_files({a.files.begin(), a.files.end()}, a.jobs));
}

}  // namespace

void add_verify_command(GuardApp& g) {
    auto a = std::make_shared<VerifyArgs>();
    CLI::App* sub = g.add("verify", "Verify downloaded packages offline against FILE.sig",
                          [a, &g] { return run_verify(*a, g.out); });
    sub->add_option("FILE", a->files, "Package files")->required();
    sub->add_option("--key", a->allowed, "Allow only this key (repeatable)")->type_name("NAME");
    add_jobs_option(*sub, a->jobs);
    a->keys.add_to(*sub);
    add_output_flags(*sub, g.out);
}

}  // namespace condaguard::cli
