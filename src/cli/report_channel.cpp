// The channel and index reports of report.hpp, in their own source so that
// conda-sign, which never prints them, does not link the channel library.
#include <condaguard/channel/publish.hpp>
#include <condaguard/channel/verify.hpp>

#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace condaguard::cli {

namespace {

std::string plural(std::size_t n, std::string_view word) {
    return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
}

// "noarch: index VALID; 3 packages, all VALID" and the like.
std::string subdir_summary(const SubdirFindings& s) {
    std::string line = fmt::format("{}: index {}", escape_text(s.subdir), to_string(s.index.verdict));
    if (s.index.verdict != Verdict::Valid) return line + "; packages not checked";
    if (s.packages.empty()) return line + "; no packages checked";
    const auto refused = static_cast<std::size_t>(
        std::count_if(s.packages.begin(), s.packages.end(), [](const Result& r) { return r.verdict != Verdict::Valid; }));
    if (refused == 0) return line + fmt::format("; {}, all VALID", plural(s.packages.size(), "package"));
    return line + fmt::format("; {}, {} refused", plural(s.packages.size(), "package"), refused);
}

}  // namespace

int Reporter::channel(const ChannelReport& report) const {
    int status = 0;
    std::vector<int> subdir_status;
    for (const auto& s : report.subdirs) {
        int st = exit_code(s.index.verdict);
        for (const auto& p : s.packages) st = std::max(st, exit_code(p.verdict));
        subdir_status.push_back(st);
        status = std::max(status, st);
    }
    if (json) {
        nlohmann::json subdirs = nlohmann::json::array();
        nlohmann::json flat = nlohmann::json::array();
        for (std::size_t i = 0; i < report.subdirs.size(); ++i) {
            const auto& s = report.subdirs[i];
            nlohmann::json packages = nlohmann::json::array();
            flat.push_back(to_json(s.index));
            for (const auto& p : s.packages) {
                packages.push_back(to_json(p));
                flat.push_back(to_json(p));
            }
            subdirs.push_back({{"subdir", s.subdir},
                               {"status", status_word(subdir_status[i])},
                               {"index", to_json(s.index)},
                               {"packages", std::move(packages)}});
        }
        print_envelope("verify-channel", status, {{"subdirs", std::move(subdirs)}, {"results", std::move(flat)}});
        return status;
    }
    std::size_t width = 0;
    for (const auto& s : report.subdirs) {
        width = std::max(width, text_width(s.index.path));
        for (const auto& p : s.packages) width = std::max(width, text_width(p.path));
    }
    for (std::size_t i = 0; i < report.subdirs.size(); ++i) {
        const auto& s = report.subdirs[i];
        fmt::print("{}\n", subdir_summary(s));
        std::vector<const Result*> lines{&s.index};
        for (const auto& p : s.packages) lines.push_back(&p);
        print_result_lines(lines, width);
    }
    return status;
}

int Reporter::index(const std::vector<SubdirReport>& subdirs, const std::optional<IndexSigner>& signer) const {
    int status = 0;
    for (const auto& r : subdirs) {
        for (const auto& p : r.excluded) {
            notice(fmt::format("{}/{}: left out of the index: {}", r.subdir, p.file, p.reason));
            status = 1;
        }
        if (r.removed_stale_signature)
            notice(fmt::format("{}: removed repodata.json.sig, which signed an older index", r.subdir));
    }
    if (json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& r : subdirs) {
            nlohmann::json j{{"subdir", r.subdir},
                             {"repodata", r.repodata.string()},
                             {"packages", r.packages},
                             {"scanned", r.scanned},
                             {"reused", r.reused},
                             {"signed_packages", r.signed_packages},
                             {"excluded", nlohmann::json::array()}};
            for (const auto& p : r.excluded) j["excluded"].push_back({{"file", p.file}, {"reason", p.reason}});
            if (r.guard) j["guard"] = r.guard->to_json();
            arr.push_back(std::move(j));
        }
        nlohmann::json body{{"subdirs", std::move(arr)}};
        if (signer) body["signer"] = {{"key", signer->key}, {"fingerprint", signer->fingerprint}};
        print_envelope("index", status, std::move(body));
        return status;
    }
    for (const auto& r : subdirs) {
        std::string line = fmt::format("{}: {} ({} read, {} unchanged)", escape_text(r.repodata.string()),
                                       plural(r.packages, "package"), r.scanned, r.reused);
        if (r.guard && signer)
            line += fmt::format("; signed version {} for channel '{}' by key {} ({}), expires {}", r.guard->version,
                                escape_text(r.guard->channel), escape_text(signer->key),
                                fingerprint_text(signer->fingerprint), format_time(r.guard->expires));
        fmt::print("{}\n", line);
        for (const auto& p : r.signed_packages) fmt::print("signed: {}/{}\n", escape_text(r.subdir), escape_text(p));
    }
    return status;
}

}  // namespace condaguard::cli
