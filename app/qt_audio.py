"""Sound playback for panels: QtMultimedia plays asynchronously, so the UI thread never waits on audio.
One player per panel; playing the sound that is playing stops it; a preview stops by itself."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, QUrl, Signal


class AudioPlayer(QObject):
    unavailable = Signal(str)  # why nothing can play (QtMultimedia missing)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._player: object | None = None
        self._stop = QTimer(self)
        self._stop.setSingleShot(True)
        self._stop.timeout.connect(self.stop)
        self.source = ""

    def play(self, path: str, seconds: float | None = None) -> bool:
        """Start `path` (stop it when it is the one playing); `seconds`: a preview that stops by itself.
        False when nothing plays."""
        try:
            from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
        except ImportError:
            self.unavailable.emit("audio playback needs QtMultimedia (PySide6-Addons)")
            return False
        player = self._player
        if not isinstance(player, QMediaPlayer):
            player = QMediaPlayer(self)
            player.setAudioOutput(QAudioOutput(self))
            self._player = player
        if player.playbackState() == QMediaPlayer.PlaybackState.PlayingState and self.source == path:
            self.stop()
            return False
        self.source = path
        player.setSource(QUrl.fromLocalFile(path))
        player.play()
        if seconds is not None:
            self._stop.start(int(seconds * 1000))
        return True

    def stop(self) -> None:
        self._stop.stop()
        player = self._player
        if player is not None:
            player.stop()  # type: ignore[attr-defined]
        self.source = ""
