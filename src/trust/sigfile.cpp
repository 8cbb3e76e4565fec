#include <condaguard/trust/sigfile.hpp>
#include <condaguard/trust/verdict.hpp>

#include <condaguard/sys/fs.hpp>

#include <fmt/format.h>
#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>

namespace condaguard {

namespace {

constexpr int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

bool is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::vector<std::string_view> split_ascii_whitespace(std::string_view text) {
    std::vector<std::string_view> tokens;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && is_ascii_space(text[i])) ++i;
        std::size_t start = i;
        while (i < text.size() && !is_ascii_space(text[i])) ++i;
        if (i > start) tokens.push_back(text.substr(start, i - start));
    }
    return tokens;
}

}  // namespace

std::optional<std::vector<unsigned char>> base64_decode_strict(std::string_view text) {
    if (text.empty() || text.size() % 4 != 0) return std::nullopt;
    std::size_t pad = 0;
    if (text.back() == '=') ++pad;
    if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
    const std::size_t body = text.size() - pad;
    for (std::size_t i = 0; i < body; ++i) {
        if (b64_value(text[i]) < 0) return std::nullopt;  // also rejects '=' inside
    }
    // Canonical encoding only: the bits a padded group leaves over must be zero.
    if (pad == 1 && (b64_value(text[body - 1]) & 0x03) != 0) return std::nullopt;
    if (pad == 2 && (b64_value(text[body - 1]) & 0x0f) != 0) return std::nullopt;

    std::vector<unsigned char> out(text.size() / 4 * 3);
    int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                            static_cast<int>(text.size()));
    if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
    out.resize(out.size() - pad);
    return out;
}

std::string base64_encode(std::span<const unsigned char> bytes) {
    std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                            static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

SigFile parse_sig_file(std::string_view text, const std::string& origin) {
    auto bad = [&](const std::string& why) { return VerdictError(Verdict::BadSigFile, origin + ": " + why); };
    if (text.size() > max_sig_file_bytes)
        throw bad(fmt::format("signature file is larger than {} bytes", max_sig_file_bytes));
    auto tokens = split_ascii_whitespace(text);
    if (tokens.size() != 2)
        throw bad(fmt::format("expected 2 tokens 'NAME SIGNATURE', found {}", tokens.size()));
    if (auto why = KeyName::problem(tokens[0])) throw bad(*why);
    auto sig = base64_decode_strict(tokens[1]);
    if (!sig) throw bad("signature is not canonical standard base64");
    return SigFile{KeyName(std::string(tokens[0])), std::move(*sig)};
}

namespace {

// Reads and parses a .sig file that `open` opens (open_untrusted or open_untrusted_at).
template <class Open>
SigFile read_sig(const std::string& origin, Open open) {
    fs::OpenedFile f;
    try {
        f = open();
    } catch (const fs::NotRegularFile& e) {
        if (e.kind() == fs::FileKind::Missing) throw VerdictError(Verdict::MissingSig, origin + ": no signature file");
        throw VerdictError(Verdict::BadSigFile, origin + ": signature file " + e.what());
    }
    auto r = fs::read_capped(f.fd.get(), max_sig_file_bytes, origin);
    if (r.too_big)
        throw VerdictError(Verdict::BadSigFile,
                           fmt::format("{}: signature file is larger than {} bytes", origin, max_sig_file_bytes));
    return parse_sig_file(r.data, origin);
}

}  // namespace

SigFile read_sig_file(const std::filesystem::path& path) {
    return read_sig(path.string(), [&] { return fs::open_untrusted(path); });
}

SigFile read_sig_file_at(int dirfd, const std::string& name, const std::filesystem::path& display) {
    return read_sig(display.string(), [&] { return fs::open_untrusted_at(dirfd, name, display); });
}

std::string format_sig_file(const KeyName& key, std::span<const unsigned char> signature) {
    return key.str() + " " + base64_encode(signature) + "\n";
}

}  // namespace condaguard
