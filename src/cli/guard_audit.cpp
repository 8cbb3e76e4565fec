// conda-guard audit: is what is installed in an environment what a trusted
// channel signed, and what changed or was added since (audit/audit.hpp).
#include <condaguard/audit/audit.hpp>

#include <condaguard/sys/text.hpp>

#include "gate_setup.hpp"
#include "guard.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace condaguard::cli {

namespace {

struct AuditArgs {
    std::string prefix;
    std::string name;
    std::vector<std::string> pkgs_dirs;
    bool online = false;
    GateSetupOptions setup;
    unsigned jobs = 0;
};

// -p PREFIX as given; -n NAME as conda finds it: "base" is conda's root
// prefix, any other name the first ENVS_DIR/NAME of envs_dirs that holds
// conda-meta; neither: the active environment ($CONDA_PREFIX), as conda's
// own commands default to it (so `conda guard audit` audits the active one).
std::filesystem::path target_prefix(const AuditArgs& a, const GateSetup& setup) {
    if (!a.prefix.empty() && !a.name.empty()) throw CommandError(2, "give -p PREFIX or -n NAME, not both");
    if (!a.prefix.empty()) return a.prefix;
    if (a.name.empty()) {
        const auto vars = read_variables();
        if (auto it = vars.find("CONDA_PREFIX"); it != vars.end() && !it->second.empty()) return it->second;
        throw CommandError(2, "no environment: give -p PREFIX or -n NAME (no conda environment is active)");
    }
    if (a.name == "base") {
        const std::filesystem::path root = root_prefix(read_variables());
        if (root.empty()) throw CommandError(2, "-n base: conda's root prefix is unknown (set CONDA_ROOT or CONDA_EXE)");
        return root;
    }
    if (a.name.find('/') != std::string::npos || a.name == "." || a.name == "..")
        throw CommandError(2, fmt::format("-n {}: an environment name has no '/'", condaguard::quoted(a.name)));
    std::vector<std::string> looked;
    for (const auto& dir : setup.conda.envs_dirs.value) {
        std::error_code ec;
        if (std::filesystem::is_directory(dir / a.name / "conda-meta", ec)) return dir / a.name;
        looked.push_back(dir.string());
    }
    const bool root_known = !root_prefix(read_variables()).empty();
    throw CommandError(2, fmt::format("no environment {} in envs_dirs ({}){}", condaguard::quoted(a.name),
                                      fmt::join(looked, ", "),
                                      root_known ? "" : "; conda's root prefix is unknown (set CONDA_EXE or "
                                                        "CONDA_ROOT, or give -p PREFIX)"));
}

int run_audit(const AuditArgs& a, const Reporter& out) {
    const GateSetup setup = load_gate_setup(a.setup, out);
    const std::filesystem::path prefix = target_prefix(a, setup);
    const GateOptions gate = gate_options(setup, out);
    AuditOptions o{.trust_for = gate.trust_for, .revoked = gate.revoked, .min_rsa_bits = gate.min_rsa_bits,
                   .jobs = a.jobs};
    if (!a.pkgs_dirs.empty()) {
        o.pkgs_dirs.assign(a.pkgs_dirs.begin(), a.pkgs_dirs.end());
    } else {
        o.pkgs_dirs = setup.conda.pkgs_dirs.value;
    }
    if (a.online) {
        if (setup.conda.offline.value)
            throw CommandError(2, fmt::format("--online, but conda's offline setting is on ({})", setup.conda.offline.source));
        o.online = gate;
    }
    ProgressLine line(out);
    o.progress = [&](const AuditProgress& p) { line.show(p); };
    AuditReport report;
    try {
        report = audit_prefix(prefix, o, setup.env);
    } catch (const std::runtime_error& e) {  // std::system_error too
        throw CommandError(2, e.what());
    }
    return out.audit(prefix, report);
}

}  // namespace

void add_audit_command(GuardApp& g) {
    auto a = std::make_shared<AuditArgs>();
    CLI::App* sub = g.add("audit",
                          "Audit an installed environment: each record authenticated by its signed archive, every "
                          "file checked, files no package owns listed",
                          [a, &g] { return run_audit(*a, g.out); });
    sub->add_option("-p,--prefix", a->prefix, "The environment's directory (default: the active one, $CONDA_PREFIX)")->type_name("PREFIX");
    sub->add_option("-n,--name", a->name, "The environment's name (looked up in conda's envs_dirs; base: the root)")
        ->type_name("NAME");
    sub->add_option("--pkgs-dir", a->pkgs_dirs,
                    "Look for the signed archives here (repeatable; default: conda's pkgs_dirs)")
        ->type_name("DIR");
    sub->add_flag("--online", a->online,
                  "For a record whose archive is in no package directory, check its sha256 against its channel's "
                  "signed index, fetched and verified as the install gate does");
    a->setup.add_to(*sub);
    add_jobs_option(*sub, a->jobs);
    add_output_flags(*sub, g.out);
}

}  // namespace condaguard::cli
