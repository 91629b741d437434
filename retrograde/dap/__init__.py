"""The Debug Adapter Protocol over a recording: `retrograde dap`."""
