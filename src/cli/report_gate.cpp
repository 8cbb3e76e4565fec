// The install gate's report and progress display (report.hpp), in their own
// source so that only conda-guard links the install library.
#include <condaguard/install/gate.hpp>
#include <condaguard/package/name.hpp>

#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace condaguard::cli {

namespace {

// As exit_status, but UNVERIFIED passes: only the gate gives it, and only to
// what its policy allows unsigned (every other command counts it a failure).
int gate_exit_status(const std::vector<Result>& results) {
    int code = 0;
    for (const auto& r : results) code = std::max(code, r.verdict == Verdict::Unverified ? 0 : exit_code(r.verdict));
    return code;
}

}  // namespace

int Reporter::gate(const GateReport& report) const {
    std::vector<Result> all = report.indexes;
    all.insert(all.end(), report.packages.begin(), report.packages.end());
    const int status = gate_exit_status(all);
    if (json) {
        nlohmann::json indexes = nlohmann::json::array();
        nlohmann::json packages = nlohmann::json::array();
        for (const auto& r : report.indexes) indexes.push_back(to_json(r));
        for (std::size_t i = 0; i < report.packages.size(); ++i) {
            nlohmann::json j = to_json(report.packages[i]);
            j["cleaned"] = report.cleaned.at(i);
            packages.push_back(std::move(j));
        }
        print_envelope("fetch", status,
                       {{"indexes", std::move(indexes)}, {"packages", std::move(packages)}, {"placed", report.placed}});
        return status;
    }
    std::size_t width = 0;
    for (const auto& r : all) width = std::max(width, text_width(r.path));
    std::vector<const Result*> lines;
    for (const auto& r : all) lines.push_back(&r);
    print_result_lines(lines, width);
    for (std::size_t i = 0; i < report.packages.size(); ++i) {
        // The package's file name, from its URL (without a "#sha256" part).
        const std::string& url = report.packages[i].path;
        const std::string_view base = std::string_view(url).substr(0, url.find('#'));
        const auto name = parse_package_file_name(base.substr(base.rfind('/') + 1));
        for (const auto& folder : report.cleaned.at(i))
            fmt::print("cleaned {} (claimed {})\n", escape_text(folder), escape_text(name ? name->stem() : url));
    }
    std::size_t placed_valid = 0, placed_unverified = 0, not_placed = 0;
    for (std::size_t i = 0; i < report.packages.size(); ++i) {
        const Verdict v = report.packages[i].verdict;
        if (v != Verdict::Valid && v != Verdict::Unverified) continue;
        if (!report.folders.at(i)) ++not_placed;
        else if (v == Verdict::Valid) ++placed_valid;
        else ++placed_unverified;
    }
    const std::size_t n = report.packages.size();
    const std::size_t refused = n - placed_valid - placed_unverified - not_placed;
    const char* plural = n == 1 ? "" : "s";
    if (refused == 0 && not_placed == 0) {
        fmt::print("{} of {} package{} verified and placed{}\n", placed_valid, n, plural,
                   placed_unverified
                       ? fmt::format("; {} UNVERIFIED placed, as the policy allows unsigned", placed_unverified)
                       : std::string());
    } else {
        // All or nothing: a refusal leaves the package directories as they were.
        const std::size_t placed = placed_valid + placed_unverified;
        fmt::print("{} of {} package{} refused; {}{}\n", refused, n, plural,
                   placed == 0 ? std::string("nothing was placed") : fmt::format("only {} placed", placed),
                   not_placed ? fmt::format(" ({} verified but not placed because of the refusal)", not_placed)
                              : std::string());
    }
    return status;
}

int Reporter::gate_answer(const GateAnswer& answer) const {
    std::vector<Result> all = answer.indexes;
    for (const auto& p : answer.packages) all.push_back(p.result);
    const int status = gate_exit_status(all);
    nlohmann::json indexes = nlohmann::json::array();
    nlohmann::json packages = nlohmann::json::array();
    for (const auto& r : answer.indexes) indexes.push_back(to_json(r));
    for (const auto& p : answer.packages) {
        nlohmann::json j = to_json(p.result);
        j.erase("path");
        j["url"] = p.result.path;
        j["fn"] = p.fn;
        j["placed"] = p.folder ? nlohmann::json(*p.folder) : nlohmann::json(nullptr);
        j["cleaned"] = p.cleaned;
        if (p.unverified_by) j["unsigned_channel"] = *p.unverified_by;
        packages.push_back(std::move(j));
    }
    print_envelope("gate", status,
                   {{"dry_run", answer.dry_run}, {"indexes", std::move(indexes)}, {"packages", std::move(packages)}});
    return status;
}

int Reporter::gate_stopped(std::string_view message) const {
    constexpr int status = 2;
    fmt::print(stderr, "{}: error: {}\n", prog_, escape_text(message));
    print_envelope("gate", status, {{"message", message}});
    return status;
}

void ProgressLine::show(const GateProgress& p) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!shown_) start_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(p.bytes_done) / secs : 0.0;
    draw(fmt::format("{:.1f} / {:.1f} MB, {} of {} packages, {:.1f} MB/s", static_cast<double>(p.bytes_done) / 1e6,
                     static_cast<double>(p.bytes_expected) / 1e6, p.packages_done, p.packages_total, rate / 1e6));
}

}  // namespace condaguard::cli
