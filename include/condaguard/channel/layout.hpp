// Names in a channel's file layout: CHANNEL/SUBDIR/{repodata.json, .sig, packages}.
#pragma once

#include <string_view>

namespace condaguard {

// Subdir names: "noarch" or PLATFORM-ARCH ([a-z0-9]+-[a-z0-9_]+).
bool is_subdir_name(std::string_view name);

inline constexpr const char* repodata_name = "repodata.json";
inline constexpr const char* repodata_sig_name = "repodata.json.sig";
// The publisher's incremental-index cache inside each subdir.
inline constexpr const char* index_cache_dir = ".cache";
inline constexpr const char* index_cache_name = "condaguard-index.json";
inline constexpr const char* index_cache_path = ".cache/condaguard-index.json";

}  // namespace condaguard
