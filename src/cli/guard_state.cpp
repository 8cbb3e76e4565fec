// conda-guard state show | reset CHANNEL_ID: the highest index versions seen.
#include <condaguard/channel/state.hpp>

#include "guard.hpp"

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
    add_output_flags(*state, g.out);
    auto store = [a] { return StateStore(read_environment({.keys_dir = {}, .state_dir = a->state_dir}).state_dir); };

    CLI::App* show = state->add_subcommand("show", "Every channel and subdir with the highest version seen");
    g.runners[show] = [store, &g] { return g.out.state_show(store().dump()); };

    CLI::App* reset = state->add_subcommand("reset", "Forget a channel, so a lower version or new location is accepted once");
    reset->add_option("CHANNEL_ID", a->channel, "The channel's identity (info.guard.channel)")->required();
    g.runners[reset] = [store, a, &g] {
        if (!store().reset(a->channel)) throw CommandError(2, fmt::format("channel '{}' is not in the state", a->channel));
        return g.out.state_reset(a->channel);
    };
}

}  // namespace condaguard::cli
