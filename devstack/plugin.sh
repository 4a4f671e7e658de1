#!/bin/bash
#
# devstack plugin of logrca: ``enable_plugin logrca <repo> [branch]``.
# devstack sources this file with the mode and phase as arguments.

# Save trace setting
_XTRACE_LOGRCA_PLUGIN=$(set +o | grep xtrace)
set -o xtrace

source $LOGRCA_DIR/devstack/lib/logrca

if is_service_enabled logrca-api logrca-agent logrca-conductor; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing logrca"
        install_logrca

    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring logrca"
        configure_logrca
        if is_service_enabled key; then
            create_logrca_accounts
        fi

    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Initializing and starting logrca"
        init_logrca
        start_logrca

    elif [[ "$1" == "stack" && "$2" == "test-config" ]]; then
        if is_service_enabled tempest; then
            configure_tempest_for_logrca
        fi
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_logrca
    fi

    if [[ "$1" == "clean" ]]; then
        cleanup_logrca
    fi
fi

# Restore xtrace
$_XTRACE_LOGRCA_PLUGIN
