// What conda-guard fetch and conda-guard gate share: the policy and conda's
// configuration (.condarc) loaded once, the gate's options they give, and
// the package directory packages land in.
#pragma once

#include <condaguard/config/condarc.hpp>
#include <condaguard/config/policy.hpp>
#include <condaguard/install/explicit.hpp>
#include <condaguard/install/gate.hpp>

#include "common.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace condaguard::cli {

// The options fetch and gate share: --policy, --keys-dir, --state-dir.
struct GateSetupOptions {
    std::string policy;
    std::string keys_dir;
    std::string state_dir;
    void add_to(CLI::App& app);
};

// conda's prefix (sys.prefix): $CONDA_ROOT, else two levels above $CONDA_EXE
// (PREFIX/bin/conda); empty when neither is set.
std::filesystem::path root_prefix(const std::map<std::string, std::string>& vars);

struct GateSetup {
    Environment env;
    Policy policy;
    CondaConfig conda;
    std::filesystem::path cwd;
};

// Reads the environment, the policy (--policy alone when given,
// else the default files) and conda's configuration. A configuration error
// ends the command (exit 2); a policy that lowers the RSA floor is warned
// about.
GateSetup load_gate_setup(const GateSetupOptions& options, const Reporter& out);

// conda's package directories in conda's order, with the one packages land
// in moved first: the first that is a writable directory, or can be made
// (its nearest existing ancestor is writable). The others keep their order.
// Ends the command (exit 2) when none is usable.
std::vector<std::filesystem::path> writable_first(std::vector<std::filesystem::path> dirs);

// Ends the command (exit 2) when conda's offline setting is on and a
// package is not a file:// URL.
void refuse_remote_when_offline(const CondaConfig& conda, const std::vector<PackageUrl>& packages);

// The gate's options from the policy and conda's transport settings (warns
// when ssl_verify is false); pkgs_dirs, jobs and dry_run are left to the
// caller. The options refer to `setup`, which must outlive them.
GateOptions gate_options(const GateSetup& setup, const Reporter& out);

}  // namespace condaguard::cli
