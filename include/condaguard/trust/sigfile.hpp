// FILE.sig: one line "NAME SP BASE64 LF" (readers take exactly two tokens
// separated by ASCII whitespace), at most 4 KiB, base64 decoded strictly.
#pragma once

#include <condaguard/trust/key_name.hpp>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace condaguard {

inline constexpr std::size_t max_sig_file_bytes = 4096;

struct SigFile {
    KeyName key;
    std::vector<unsigned char> signature;
};

// Standard alphabet, '=' padding required, no whitespace, zero pad bits.
std::optional<std::vector<unsigned char>> base64_decode_strict(std::string_view text);
std::string base64_encode(std::span<const unsigned char> bytes);

// Parses the text of a .sig file; throws VerdictError(BadSigFile) naming `origin`.
SigFile parse_sig_file(std::string_view text, const std::string& origin);

// Reads and parses PATH (O_NOFOLLOW). Throws VerdictError: MissingSig when it
// does not exist or is not a regular file, BadSigFile when malformed.
SigFile read_sig_file(const std::filesystem::path& path);
// The same for `name` inside the directory `dirfd` (openat, O_NOFOLLOW; no
// '/' in `name`), so a directory reached without following links is never
// left. `display` (the path it stands for) names the file in reasons.
SigFile read_sig_file_at(int dirfd, const std::string& name, const std::filesystem::path& display);

std::string format_sig_file(const KeyName& key, std::span<const unsigned char> signature);

}  // namespace condaguard
