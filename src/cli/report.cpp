#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace condaguard::cli {

nlohmann::json to_json(const Result& r) {
    nlohmann::json j{{"path", r.path}, {"verdict", to_string(r.verdict)}, {"reason", r.reason}};
    j["key"] = r.key ? nlohmann::json(*r.key) : nlohmann::json(nullptr);
    j["fingerprint"] = r.fingerprint ? nlohmann::json(*r.fingerprint) : nlohmann::json(nullptr);
    return j;
}

int exit_status(const std::vector<Result>& results) {
    int code = 0;
    for (const auto& r : results) code = std::max(code, exit_code(r.verdict));
    return code;
}

std::string status_word(const std::vector<Result>& results) {
    switch (exit_status(results)) {
    case 0: return "ok";
    case 1: return "fail";
    default: return "error";
    }
}

void print_text(std::FILE* out, const std::vector<Result>& results) {
    for (const auto& r : results) fmt::print(out, "{:<40} {:<13} {}\n", r.path, to_string(r.verdict), r.reason);
}

void print_json_object(std::FILE* out, nlohmann::json doc) {
    // error_handler_t::replace: file names that are not UTF-8 must not abort output.
    fmt::print(out, "{}\n", doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

void print_json(std::FILE* out, const std::string& command, const std::vector<Result>& results) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : results) arr.push_back(to_json(r));
    print_json_object(out, {{"version", json_version},
                            {"command", command},
                            {"status", status_word(results)},
                            {"results", std::move(arr)}});
}

int report(const std::string& command, const std::vector<Result>& results, bool json) {
    if (json)
        print_json(stdout, command, results);
    else
        print_text(stdout, results);
    return exit_status(results);
}

}  // namespace condaguard::cli
