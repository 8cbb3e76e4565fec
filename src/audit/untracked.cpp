#include <condaguard/audit/untracked.hpp>

namespace condaguard {

namespace {

std::string_view basename(std::string_view path) {
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string_view dirname(std::string_view path) {
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? std::string_view{} : path.substr(0, slash);
}

// DIR/__pycache__/STEM.TAG[.opt-N].pyc -> DIR/STEM.py, when it has that shape.
std::optional<std::string> pycache_source(std::string_view path) {
    const std::string_view name = basename(path);
    const std::string_view dir = dirname(path);
    if (basename(dir) != "__pycache__" || !name.ends_with(".pyc")) return std::nullopt;
    const auto dot = name.find('.');
    if (dot == 0 || dot == std::string_view::npos || dot + 4 == name.size()) return std::nullopt;  // no TAG
    const std::string_view parent = dirname(dir);
    std::string source(parent);
    if (!source.empty()) source += '/';
    source.append(name.substr(0, dot)).append(".py");
    return source;
}

}  // namespace

UntrackedRule classify_untracked(std::string_view path, const std::set<std::string, std::less<>>& owned) {
    const std::string_view name = basename(path);
    if (name.ends_with(".pth") || name == "sitecustomize.py" || name == "usercustomize.py")
        return UntrackedRule::AlwaysReported;
    if (path == "conda-meta/history" || path == "conda-meta/pinned") return UntrackedRule::CondaMeta;
    if (dirname(path) == "conda-meta" && name.ends_with(".json")) return UntrackedRule::CondaMeta;
    if (auto source = pycache_source(path); source && owned.contains(*source)) return UntrackedRule::OwnedPycache;
    return UntrackedRule::Reported;
}

}  // namespace condaguard

namespace condaguard {

bool walk_skips(std::string_view dir, bool holds_urls_txt, bool holds_conda_meta_history) {
    if (dir == "pkgs") return holds_urls_txt;
    if (dirname(dir) == "envs") return holds_conda_meta_history;
    return false;
}

}  // namespace condaguard
