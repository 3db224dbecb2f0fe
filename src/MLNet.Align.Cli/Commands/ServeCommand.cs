using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MLNet.Align.Search;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary><c>mlnet-align serve --index DIR [--urls URL]</c>: the search page and API of an index on ASP.NET Core
/// (GET /api/search?q=&amp;k=, POST /api/search with an image, thumbnails).</summary>
public sealed class ServeCommand : ICliCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var index = new Option<string>("--index") { Description = "Index folder (from 'index').", Required = true };
        var model = new Option<string?>("--model") { Description = "Aligned-model bundle (default: the one recorded when the index was built)." };
        var urls = new Option<string>("--urls") { Description = "Address(es) to listen on.", DefaultValueFactory = _ => "http://127.0.0.1:5000" };
        var cmd = new Command("serve", "Serve an image index over HTTP: a search page and a JSON API.") { index, model, urls };
        cmd.SetAction((parse, ct) => Task.Run(() => CliErrors.Run(() =>
        {
            string dir = parse.GetValue(index)!;
            // Opened before the host starts, so a wrong folder or model is one clear line, not a failing first request.
            var idx = ImageIndex.OpenExisting(dir, parse.GetValue(model));
            var app = Build(idx, parse.GetValue(urls)!);
            app.Lifetime.ApplicationStarted.Register(() =>
                Console.WriteLine($"Serving {idx.Count:N0} images of {idx.Directory} on {string.Join(", ", app.Urls)} (Ctrl+C stops)"));
            app.RunAsync(ct).GetAwaiter().GetResult();
            return 0;
        })));
        return cmd;
    }

    /// <summary>The web app over an open index (owned: disposed with the app's services).</summary>
    internal static WebApplication Build(ImageIndex index, string urls)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls(urls);
        builder.Services.AddSingleton(index);
        var app = builder.Build();
        app.MapImageSearch();
        return app;
    }
}
