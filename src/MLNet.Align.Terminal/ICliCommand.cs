using System.CommandLine;

namespace MLNet.Align.Terminal;

/// <summary>A top-level `mlnet-align` command. Implementations need a public parameterless constructor; Program
/// discovers them by reflection, so adding a command means adding one file under Commands/.</summary>
public interface ICliCommand
{
    /// <summary>Builds the command with its options, subcommands and action.</summary>
    Command Build();
}
