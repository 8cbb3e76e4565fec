// conda-guard audit's report and progress display (report.hpp).
#include <condaguard/audit/audit.hpp>

#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace condaguard::cli {

namespace {

struct FlagWord {
    unsigned flag;
    char letter;
    const char* word;
};
constexpr std::array<FlagWord, 7> flag_words{{
    {FlagSize, 'S', "size"},
    {FlagDigest, '5', "digest"},
    {FlagMode, 'M', "mode"},
    {FlagLink, 'L', "link"},
    {FlagRecord, 'R', "record"},
    {FlagMissing, '-', "missing"},
    {FlagUntracked, 'U', "untracked"},
}};

// rpm -V's column: "missing" and "untracked" as words, else S5MLR with '.'.
std::string flag_column(unsigned flags) {
    std::string letters;
    for (const auto& f : flag_words)
        if (f.letter != '-' && f.letter != 'U') letters += (flags & f.flag) != 0 ? f.letter : '.';
    if ((flags & FlagUntracked) != 0) return "untracked";
    if ((flags & FlagMissing) != 0) return (flags & FlagRecord) != 0 ? "missing R" : "missing";
    return letters;
}

nlohmann::json flags_json(unsigned flags) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& f : flag_words)
        if ((flags & f.flag) != 0) out.push_back(f.word);
    return out;
}

nlohmann::json finding_json(const FileFinding& f) {
    return {{"path", f.path}, {"flags", flags_json(f.flags)}, {"reason", f.reason}};
}

constexpr std::size_t flag_width = 9;  // "untracked"

}  // namespace

int Reporter::audit(const std::filesystem::path& prefix, const AuditReport& report) const {
    std::vector<Result> results;
    std::size_t valid = 0;
    std::size_t with_findings = 0;
    for (const auto& p : report.packages) {
        results.push_back(p.result);
        valid += p.result.verdict == Verdict::Valid ? 1 : 0;
        with_findings += p.files.size();
    }
    int status = exit_status(results);
    if (status == 0 && (with_findings != 0 || !report.untracked.empty())) status = 1;
    if (report.walk_error) status = 2;
    const nlohmann::json summary{{"packages", report.packages.size()},
                                 {"valid", valid},
                                 {"files_checked", report.files_checked},
                                 {"files_with_findings", with_findings},
                                 {"untracked", report.untracked.size()},
                                 {"bytes_hashed", report.bytes_hashed}};
    if (json) {
        nlohmann::json packages = nlohmann::json::array();
        for (const auto& p : report.packages) {
            nlohmann::json j = to_json(p.result);
            j["fn"] = p.fn;
            j["tarball"] = p.tarball.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.tarball);
            j["files_authenticated"] = p.files_authenticated;
            j["files_checked"] = p.files_checked;
            nlohmann::json files = nlohmann::json::array();
            for (const auto& f : p.files) files.push_back(finding_json(f));
            j["files"] = std::move(files);
            packages.push_back(std::move(j));
        }
        nlohmann::json untracked = nlohmann::json::array();
        for (const auto& f : report.untracked) untracked.push_back(finding_json(f));
        print_envelope("audit", status,
                       {{"prefix", prefix.string()},
                        {"packages", std::move(packages)},
                        {"untracked", std::move(untracked)},
                        {"walk_error", report.walk_error ? nlohmann::json(*report.walk_error) : nlohmann::json(nullptr)},
                        {"summary", summary}});
        return status;
    }
    std::size_t width = 0;
    for (const auto& r : results) width = std::max(width, text_width(r.path));
    for (const auto& p : report.packages) {
        print_result_lines({&p.result}, width);
        for (const auto& f : p.files)
            fmt::print("  {:<{}}  {}  {}\n", flag_column(f.flags), flag_width, escape_text(f.path), escape_text(f.reason));
    }
    for (const auto& f : report.untracked)
        fmt::print("  {:<{}}  {}  {}\n", flag_column(f.flags), flag_width, escape_text(f.path), escape_text(f.reason));
    if (report.walk_error)
        fmt::print(stderr, "{}: error: the walk for untracked files stopped: {}\n", prog_, escape_text(*report.walk_error));
    fmt::print("{} package{}: {} authenticated, {} not; {} file{} checked, {} with findings; {} untracked\n",
               report.packages.size(), report.packages.size() == 1 ? "" : "s", valid, report.packages.size() - valid,
               report.files_checked, report.files_checked == 1 ? "" : "s", with_findings, report.untracked.size());
    return status;
}

void ProgressLine::show(const AuditProgress& p) {
    if (!enabled_) return;
    draw(fmt::format("audit: {}/{} files, {:.1f} MiB hashed", p.files_done, p.files_total,
                     static_cast<double>(p.bytes_done) / (1024.0 * 1024.0)));
}

}  // namespace condaguard::cli
