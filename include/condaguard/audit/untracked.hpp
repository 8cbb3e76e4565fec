// Files in a prefix that no record owns: which of them an audit reports.
//
// The rules, in order (the first that applies decides):
//  1. Always reported, whatever follows: a *.pth file anywhere, and any
//     sitecustomize.py or usercustomize.py (Python runs them at start-up).
//  2. Ignored: conda's own bookkeeping, conda-meta/history and
//     conda-meta/pinned, and the records themselves, conda-meta/*.json.
//  3. Ignored: DIR/__pycache__/STEM.TAG.pyc (and .opt-N.pyc) when DIR/STEM.py
//     is owned by a record: Python writes these next to owned sources.
//  4. Everything else is reported.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace condaguard {

enum class UntrackedRule {
    AlwaysReported,  // rule 1
    CondaMeta,       // rule 2
    OwnedPycache,    // rule 3
    Reported,        // rule 4
};

// `path` is prefix-relative with '/' separators; `owned` holds every path a
// record lists.
UntrackedRule classify_untracked(std::string_view path, const std::set<std::string, std::less<>>& owned);

inline bool is_reported(UntrackedRule r) noexcept {
    return r == UntrackedRule::AlwaysReported || r == UntrackedRule::Reported;
}

}  // namespace condaguard

namespace condaguard {

// Directories the walk for untracked files does not enter, being trees of
// their own that conda keeps inside a base environment: PREFIX/pkgs when it
// is a package directory (holds urls.txt) and PREFIX/envs/NAME when it is
// another environment (holds conda-meta/history). `dir` is prefix-relative.
bool walk_skips(std::string_view dir, bool holds_urls_txt, bool holds_conda_meta_history);

}  // namespace condaguard
