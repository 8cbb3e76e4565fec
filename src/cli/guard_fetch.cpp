// conda-guard fetch: the install gate for packages named by URL or by an
// explicit file, into conda's package cache.
#include <condaguard/install/pkgs_dir.hpp>

#include "gate_setup.hpp"
#include "guard.hpp"

#include <fmt/format.h>

namespace condaguard::cli {

namespace {

struct FetchArgs {
    std::vector<std::string> urls;
    std::string file;
    std::string pkgs_dir;
    GateSetupOptions setup;
    unsigned jobs = 0;
};

// conda's package directories in order, the one packages land in first:
// --pkgs-dir alone, or the first of pkgs_dirs that is writable or can be made.
std::vector<std::filesystem::path> package_dirs(const FetchArgs& a, const CondaConfig& conda) {
    if (!a.pkgs_dir.empty()) return {a.pkgs_dir};
    if (conda.pkgs_dirs.value.empty())
        throw CommandError(2, "no package directory: set pkgs_dirs in .condarc or use --pkgs-dir");
    return writable_first(conda.pkgs_dirs.value);
}

int run_fetch(const FetchArgs& a, const Reporter& out) {
    if (a.urls.empty() == a.file.empty()) throw CommandError(2, "give package URLs or --file EXPLICIT_FILE (not both)");
    const GateSetup setup = load_gate_setup(a.setup, out);
    std::vector<PackageUrl> packages;
    try {
        if (!a.file.empty()) {
            packages = read_explicit_file(a.file, setup.cwd);
        } else {
            for (const auto& u : a.urls) packages.push_back(parse_package_url(u, setup.cwd));
        }
    } catch (const ExplicitError& e) {
        throw CommandError(2, fmt::format("{}: {}", a.file.empty() ? "argument" : a.file, e.what()));
    }
    refuse_remote_when_offline(setup.conda, packages);

    GateOptions o = gate_options(setup, out);
    o.pkgs_dirs = package_dirs(a, setup.conda);
    o.jobs = a.jobs;

    ProgressLine line(out);
    GateReport report;
    try {
        report = run_gate(packages, o, setup.env, [&](const GateProgress& p) { line.show(p); });
    } catch (const PackageDirBusy& e) {
        throw CommandError(2, e.what());
    }
    return out.gate(report);
}

}  // namespace

void add_fetch_command(GuardApp& g) {
    auto a = std::make_shared<FetchArgs>();
    CLI::App* sub = g.add("fetch",
                          "The install gate: fetch, verify and place packages in conda's package cache; nothing "
                          "unverified is placed",
                          [a, &g] { return run_fetch(*a, g.out); });
    sub->add_option("URL", a->urls,
                    "Package URLs or paths (CHANNEL/SUBDIR/FILE[#sha256]), as in an explicit file")
        ->type_name("URL");
    sub->add_option("--file", a->file, "Packages from an explicit file (@EXPLICIT, as conda list --explicit writes)")
        ->type_name("EXPLICIT_FILE");
    sub->add_option("--pkgs-dir", a->pkgs_dir,
                    "Place packages here (default: the first writable of conda's pkgs_dirs, the others searched)")
        ->type_name("DIR");
    a->setup.add_to(*sub);
    add_jobs_option(*sub, a->jobs);
    add_output_flags(*sub, g.out);
}

}  // namespace condaguard::cli
