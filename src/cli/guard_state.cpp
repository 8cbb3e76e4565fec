// conda-guard state show | reset CHANNEL_ID: the highest index versions seen.
#include <condaguard/channel/state.hpp>

#include "guard.hpp"
#include "report.hpp"

#include <fmt/format.h>

namespace condaguard::cli {

void add_state_command(GuardApp& g) {
    struct Args {
        std::string state_dir;
        std::string channel;
    };
    auto a = std::make_shared<Args>();
    CLI::App* state = g.app.add_subcommand("state", "Show or reset what was seen of signed channels (rollback state)");
    state->require_subcommand(1);
    state->fallthrough();  // --state-dir and --json may follow the action too
    state->add_option("--state-dir", a->state_dir, "State directory (default: $CONDA_GUARD_STATE_DIR, else ~/.conda/guard)")
        ->type_name("DIR");
    state->add_flag("--json", g.json, "Print as JSON");
    auto store = [a] {
        return StateStore(read_environment({}, a->state_dir).state_dir);
    };

    CLI::App* show = state->add_subcommand("show", "Every channel and subdir with the highest version seen");
    g.runners[show] = [store, &g] {
        const auto j = store().dump();
        if (g.json) {
            print_json_object(stdout, {{"version", json_version}, {"command", "state show"}, {"state", j}});
            return 0;
        }
        for (const auto& [ch, subdirs] : j["channels"].items())
            for (const auto& [sd, e] : subdirs.items())
                fmt::print("{} {} version {} signed {}\n", ch, sd, e.value("version", std::int64_t{0}),
                           e.value("signed_at", "?"));
        for (const auto& [loc, ch] : j["locations"].items())
            fmt::print("location {} -> {}\n", loc, ch.get<std::string>());
        return 0;
    };

    CLI::App* reset = state->add_subcommand("reset", "Forget a channel, so a lower version or new location is accepted once");
    reset->add_option("CHANNEL_ID", a->channel, "The channel's identity (info.guard.channel)")->required();
    g.runners[reset] = [store, a, &g] {
        const bool known = store().reset(a->channel);
        if (!known) throw CommandError(2, fmt::format("channel '{}' is not in the state", a->channel));
        if (g.json)
            print_json_object(stdout, {{"version", json_version}, {"command", "state reset"}, {"channel", a->channel}});
        else
            fmt::print("forgot channel '{}'\n", a->channel);
        return 0;
    };
}

}  // namespace condaguard::cli
